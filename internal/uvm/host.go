package uvm

import (
	"context"
	"encoding/json"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/policy"
	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/stdio"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// Notifier delivers container exit notifications to the host (the bridge's
// queue, which never drops one).
type Notifier interface {
	Notify(n *prot.ContainerNotification)
}

// Config wires a Host to the packages that do the work.
type Config struct {
	Log       *logrus.Entry
	Transport transport.Transport
	Runtime   runtime.Runtime
	Reaper    *reaper.Reaper
	Notifier  Notifier
	// PowerOff ends the VM after a shutdown request on the utility VM id.
	PowerOff func() error
	// CgroupPrefix is prepended to every container cgroup path ("" in a
	// VM; tests use a private prefix).
	CgroupPrefix string
	// StdioOptions tune every stdio relay (drain idle period...).
	StdioOptions []stdio.Option
	// ExternalPath is the PATH used to find external processes.
	ExternalPath string
	// Storage performs storage resources (nil: rejected).
	Storage Storage
	// Network keeps network namespaces (nil: rejected).
	Network Network
	// Stats reads a cgroup's statistics as the host's LCOWMetrics JSON.
	Stats func(cgroupPath string) (json.RawMessage, error)
	// UpdatePodMemoryLimit recomputes the containers' memory limit.
	UpdatePodMemoryLimit func() error
	// CreatePodCgroup creates a pod's cgroup (/pods/<sid>, relative to the
	// cgroup prefix) with the sandbox's resources; RemovePodCgroup removes
	// it when the pod's last container is deleted. Nil: not managed.
	CreatePodCgroup func(path string, res *specs.LinuxResources) error
	RemovePodCgroup func(path string) error
	// Hostname overrides the UVM hostname used for sandboxes.
	Hostname string
	// DevRoot stands for /dev when resolving container devices.
	DevRoot string
	// Policy is the security policy seam (nil: open door until a policy
	// arrives). Storage is wrapped so that every mount goes through it.
	Policy *policy.Enforcer
	// VPCI finds assigned PCI devices (nil: VPCIDevice and vPCI devices
	// of a workload are refused).
	VPCI VPCI
	// EagerCreate creates every container at Create (runc create, then
	// runc start) instead of deferring it to the init's start where the
	// protocol allows (docs/containers.md, "Deferred create").
	EagerCreate bool
}

// VPCI finds a PCI device assigned over VMBus and its device nodes
// (internal/vpci).
type VPCI interface {
	Wait(ctx context.Context, vmbusID string) (string, error)
	DeviceNodes(ctx context.Context, vmbusID string) ([]specs.LinuxDevice, error)
}

// Host is the guest's state. It implements handlers.Guest.
type Host struct {
	cfg        Config
	log        *logrus.Entry
	containers *registry
	externals  *processTable
	pods       *podTable
	policy     *policy.Enforcer
}

// New returns a Host.
func New(cfg Config) *Host {
	if cfg.Log == nil {
		cfg.Log = logging.Discard()
	}
	if cfg.ExternalPath == "" {
		cfg.ExternalPath = "/sbin:/usr/sbin:/bin:/usr/bin"
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.OpenDoor()
	}
	h := &Host{
		policy:     cfg.Policy,
		log:        cfg.Log.WithField("component", "uvm"),
		containers: newRegistry(),
		externals:  newProcessTable(retainedExits),
		pods:       newPodTable(podCgroups{create: cfg.CreatePodCgroup, remove: cfg.RemovePodCgroup}, cfg.Log.WithField("component", "pods")),
	}
	if cfg.Storage != nil {
		cfg.Storage = cfg.Policy.GuardStorage(cfg.Storage, h.rootfsInUse)
	}
	h.cfg = cfg
	return h
}

// ShutdownUVM powers the VM off. It only returns on failure.
func (h *Host) ShutdownUVM(ctx context.Context) error {
	h.log.Info("utility VM shutdown requested")
	if h.cfg.PowerOff == nil {
		return prot.Errorf(prot.HrFail, "this gcs cannot power off its VM")
	}
	if err := h.cfg.PowerOff(); err != nil {
		return prot.Errorf(prot.HrFail, "power off: %v", err)
	}
	return nil
}

// WaitForProcess implements handlers.Guest.
func (h *Host) WaitForProcess(ctx context.Context, id string, pid uint32, timeout time.Duration) (uint32, func(), error) {
	if id == prot.NullContainerID {
		p, ok := h.externals.get(pid)
		if !ok {
			return 0, nil, prot.Errorf(prot.HrErrNotFound, "external process %d not found", pid)
		}
		code, err := waitAndRetire(ctx, h.externals, p, timeout)
		return code, nil, err
	}
	c, err := h.containers.lookup(id)
	if err != nil {
		return 0, nil, err
	}
	if c.isInit(pid) {
		code, err := c.init.wait(ctx, timeout)
		if err != nil {
			return 0, nil, err
		}
		// The init stays answerable until DeleteContainerState; the exit
		// notification may go once this response is queued.
		return code, c.markInitAnswered, nil
	}
	p, ok := c.execs.get(pid)
	if !ok {
		return 0, nil, prot.Errorf(prot.HrErrNotFound, "process %d not found in container %s", pid, id)
	}
	code, err := waitAndRetire(ctx, c.execs, p, timeout)
	return code, nil, err
}
