package uvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/stdio"
)

// undo collects the rollback steps of a multi-step operation, run in
// reverse on failure.
type undo []func()

func (u *undo) add(f func()) { *u = append(*u, f) }

func (u undo) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// CreateContainer implements docs/lifecycle.md, "Create, step by step":
// everything up to runc create, plus networking. A failure undoes every step
// already taken.
func (h *Host) CreateContainer(ctx context.Context, id string, settings *prot.VMHostedContainerSettingsV2) (err error) {
	if id == prot.NullContainerID {
		return prot.Errorf(prot.HrFail, "Create: the utility VM id %s cannot be used for a container", id)
	}
	if err := h.policy.CheckConsistent(); err != nil {
		return err
	}
	if err := runtime.ValidateID(id); err != nil {
		return prot.NewError(prot.HrErrInvalidArg, fmt.Errorf("Create: %w", err))
	}
	spec := settings.OCISpecification
	if spec.Process == nil {
		return prot.Errorf(prot.HrVmcomputeInvalidJSON, "Create %s: the OCI spec has no process", id)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return prot.Errorf(prot.HrVmcomputeInvalidJSON, "Create %s: the OCI spec has no root.path", id)
	}
	if err := checkUnder("OciBundlePath", settings.OCIBundlePath, bundleRoots); err != nil {
		return err
	}
	if settings.ScratchDirPath != "" {
		if err := checkUnder("ScratchDirPath", settings.ScratchDirPath, scratchRoots); err != nil {
			return err
		}
	}
	if h.policy.Confidential() {
		if err := confidentialSettings(id, settings); err != nil {
			return err
		}
	}
	kind, sandboxID, err := oci.Classify(id, spec.Annotations)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("Create %s: %w", id, err))
	}

	c := newContainer(id)
	c.kind, c.sandboxID = kind, sandboxID
	c.bundle, c.scratch, c.spec = settings.OCIBundlePath, settings.ScratchDirPath, spec
	if spec.Windows != nil && spec.Windows.Network != nil {
		c.nsID = strings.ToLower(spec.Windows.Network.NetworkNamespace)
	}
	c.userFromName = spec.Process.User.Username != ""
	log := h.log.WithFields(logrus.Fields{"cid": id, "kind": kind.String(), "sandbox": sandboxID})

	if err := h.containers.reserve(c); err != nil {
		return err
	}
	var rollback undo
	defer func() {
		if err != nil {
			log.WithError(err).Warn("create failed; rolling back")
			rollback.run()
			h.containers.remove(c)
		}
	}()

	var hostDevices []specs.LinuxDevice
	if spec.Linux != nil {
		hostDevices = append(hostDevices, spec.Linux.Devices...)
	}
	if err := h.setupSpec(ctx, c, &rollback); err != nil {
		return err
	}
	// The tee-log annotations, for every kind, against the container's
	// root (upstream internal/guest/runtime/hcsv2/uvm.go, CreateContainer):
	// the log directory's mount before the policy sees the mounts, the log
	// file only if the policy lets the init's stdio out.
	if err := oci.AddTeeLogDirMount(spec, c.root); err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("Create %s: %w", id, err))
	}
	if err := h.enforceCreate(ctx, c, hostDevices, &rollback); err != nil {
		return err
	}
	if l := spec.Annotations[oci.AnnotationTeeLogPath]; l != "" && c.stdioDenied {
		return prot.Errorf(prot.HrFail, "Create %s: teeing the init's stdio to %q is denied: the policy does not allow stdio access", id, l)
	}
	if c.teeLog, err = oci.TeeLogPath(spec, c.root); err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("Create %s: %w", id, err))
	}
	oci.ApplyHostNetwork(spec, c.hostNetwork)
	if spec.Linux != nil && spec.Linux.CgroupsPath != "" {
		c.cgroupPath = spec.Linux.CgroupsPath
		spec.Linux.CgroupsPath = cgroupJoin(h.cfg.CgroupPrefix, spec.Linux.CgroupsPath)
	}
	// WriteConfig creates the bundle directory (0700) when needed.
	if err := oci.WriteConfig(c.bundle, spec); err != nil {
		return prot.Errorf(prot.HrFail, "Create %s: %v", id, err)
	}

	if err := h.runtimeCreate(ctx, c, &rollback); err != nil {
		return err
	}
	if err := h.bindNetwork(ctx, c); err != nil {
		return err
	}
	c.setState(stateCreated)
	go h.watchInit(c)
	log.WithFields(logrus.Fields{"pid": c.initPid.Load(), "deferred": c.deferred}).Info("container created")
	return nil
}

// setupSpec runs the kind-specific spec setup and pod bookkeeping.
func (h *Host) setupSpec(ctx context.Context, c *container, rollback *undo) error {
	spec := c.spec
	c.hostNetwork = oci.HostNetworkRequested(spec.Annotations)
	opts := oci.Options{UVMHostname: h.hostname(), Bundle: c.bundle, DevRoot: h.cfg.DevRoot, Log: h.log.WithField("cid", c.id)}
	if h.cfg.VPCI != nil {
		opts.Assigned = h.cfg.VPCI
	}
	var root string
	switch c.kind {
	case oci.KindWorkload:
		podRoot, err := h.pods.join(c.sandboxID, c.id)
		if err != nil {
			return err
		}
		rollback.add(func() { h.pods.leave(c.sandboxID, c.id) })
		root = podRoot
		if sb, err := h.containers.lookup(c.sandboxID); err == nil {
			c.hostNetwork = sb.hostNetwork
		}
	case oci.KindSandbox:
		r, err := oci.SandboxRoot(c.bundle, spec.Annotations)
		if err != nil {
			return prot.NewError(prot.HrFail, err)
		}
		root = r
		skip := oci.SkipPodNetworking(spec.Annotations)
		// A virtual pod's sandbox, like one that skips pod networking, gets
		// an empty namespace record: its adapters may arrive after it runs.
		virtual := oci.IsVirtualPodSandbox(c.id, spec.Annotations)
		if (skip || virtual) && c.nsID != "" && h.cfg.Network != nil {
			h.cfg.Network.EnsureNamespace(c.nsID)
		}
		dns, err := h.dnsOf(c.nsID)
		switch {
		case err == nil:
			opts.DNS = dns
		case skip:
		case virtual && c.nsID == "":
			// No namespace at all: an empty resolv.conf.
			opts.DNS = &oci.DNS{}
		default:
			return prot.NewError(prot.HrFail, fmt.Errorf("sandbox %s: network namespace %q: %w", c.id, c.nsID, err))
		}
	default:
		root = c.bundle
		if dns, err := h.dnsOf(c.nsID); err == nil {
			opts.DNS = dns
		}
	}
	c.root = root
	if err := oci.Setup(ctx, c.kind, c.id, c.sandboxID, root, spec, opts); err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("Create %s: %w", c.id, err))
	}
	if c.kind == oci.KindSandbox {
		if err := h.pods.create(c.sandboxID, root, spec.Linux.Resources); err != nil {
			return err
		}
		rollback.add(func() { h.pods.leave(c.sandboxID, c.sandboxID) })
	}
	rollback.add(func() { removeOwned(c.bundle, bundleRoots) })
	if c.kind == oci.KindSandbox {
		if root != c.bundle {
			// A virtual pod's root lies beside the bundle.
			rollback.add(func() { removeOwned(root, bundleRoots) })
		}
		// Undone first: nothing may be removed through these mounts.
		rollback.add(func() { unmountPodRoot(root) })
		if err := oci.PreparePodRoot(root); err != nil {
			return prot.NewError(prot.HrFail, fmt.Errorf("Create %s: %w", c.id, err))
		}
	}
	return nil
}

// unmountPodRoot unmounts and removes the shared directories of a pod root
// (oci.PreparePodRoot) and everything mounted below them.
func unmountPodRoot(root string) error {
	var errs []error
	for _, d := range oci.PodRootDirs() {
		if err := unmountTree(filepath.Join(root, d)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dnsOf returns the DNS settings of a network namespace record.
func (h *Host) dnsOf(nsID string) (*oci.DNS, error) {
	if h.cfg.Network == nil || nsID == "" {
		return nil, errors.New("no network namespace record")
	}
	settings, err := h.cfg.Network.AdapterSettings(nsID)
	if err != nil {
		return nil, err
	}
	dns, err := oci.DNSFromAdapters(settings)
	if err != nil {
		return nil, err
	}
	return &dns, nil
}

// runtimeCreate prepares the init's stdio and runs runc create.
func (h *Host) runtimeCreate(ctx context.Context, c *container, rollback *undo) error {
	terminal := c.spec.Process.Terminal
	var files runtime.StdioFiles
	var pipes *stdio.PipeRelay
	if !terminal {
		var err error
		pipes, err = stdio.NewPipeRelay(stdio.AllStreams(), h.cfg.StdioOptions...)
		if err != nil {
			return prot.Errorf(prot.HrFail, "Create %s: stdio pipes: %v", c.id, err)
		}
		cf := pipes.ChildFiles()
		files = runtime.StdioFiles{Stdin: cf.In, Stdout: cf.Out, Stderr: cf.Err}
	}
	create := h.cfg.Runtime.Create
	if c.deferred = h.canDefer(c); c.deferred {
		create = h.cfg.Runtime.Prepare
	}
	rc, err := create(ctx, c.id, c.bundle, files)
	if err != nil {
		if pipes != nil {
			pipes.Close()
		}
		return runtimeError(fmt.Sprintf("Create %s", c.id), err)
	}
	rollback.add(func() {
		if err := rc.Delete(context.Background(), true); err != nil {
			h.log.WithError(err).WithField("cid", c.id).Warn("rollback: runc delete")
		}
	})
	var relay stdio.Relay
	if terminal {
		tty, err := stdio.NewTtyRelay(rc.Console(), h.cfg.StdioOptions...)
		if err != nil {
			return prot.Errorf(prot.HrFail, "Create %s: console relay: %v", c.id, err)
		}
		relay = tty
	} else {
		if err := pipes.CloseChildEnds(); err != nil {
			h.log.WithError(err).Debug("close init child pipe ends")
		}
		relay = pipes
	}
	rollback.add(func() { relay.Close() })
	c.rc = rc
	c.initRelay = relay
	c.init = newProcess(uint32(rc.Pid()), relay, func(sig int) error { return rc.Signal(syscall.Signal(sig)) })
	c.initPid.Store(c.init.pid)
	return nil
}

// bindNetwork moves the namespace's NICs into a sandbox's or standalone
// container's network namespace (docs/lifecycle.md, "Create, step by step":
// Network namespace).
func (h *Host) bindNetwork(ctx context.Context, c *container) error {
	// A sandbox without a namespace record was already refused by
	// setupSpec unless it skips pod networking.
	if c.kind == oci.KindWorkload || c.nsID == "" || h.cfg.Network == nil {
		return nil
	}
	var err error
	if c.hostNetwork {
		err = h.cfg.Network.BindHost(ctx, c.nsID)
	} else {
		err = h.cfg.Network.Bind(ctx, c.nsID, int(c.init.pid))
	}
	if err != nil {
		if c.kind == oci.KindStandalone && isNotFound(err) {
			return nil
		}
		if c.kind == oci.KindSandbox && oci.SkipPodNetworking(c.spec.Annotations) && isNotFound(err) {
			return nil
		}
		return prot.NewError(prot.HrFail, fmt.Errorf("Create %s: network namespace %s: %w", c.id, c.nsID, err))
	}
	return nil
}

// hostname is the UVM's hostname.
func (h *Host) hostname() string {
	if h.cfg.Hostname != "" {
		return h.cfg.Hostname
	}
	name, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return name
}

// runtimeError gives a runtime failure its HRESULT.
func runtimeError(what string, err error) error {
	hr, ok := runtime.HResultOf(err)
	if !ok {
		hr = prot.HrFail
	}
	return prot.NewError(hr, fmt.Errorf("%s: %w", what, err))
}

// specUser returns the container spec's user.
func specUser(s *specs.Spec) specs.User {
	if s == nil || s.Process == nil {
		return specs.User{}
	}
	return s.Process.User
}
