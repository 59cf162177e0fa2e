package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/safepath"
)

// Options carries what the spec setup needs from the rest of the guest.
type Options struct {
	// UVMHostname is used when the spec's hostname is empty.
	UVMHostname string
	// DNS is the resolver configuration of the container's network
	// namespace record (see DNSFromAdapters); nil when no record exists.
	// A sandbox without a record fails unless it skips pod networking (then
	// no resolv.conf is written); for a virtual pod's sandbox or with
	// skip-pod-networking the caller creates the record first and passes
	// its DNS. A standalone container without a record gets an empty
	// resolv.conf.
	DNS *DNS
	// Bundle is the OciBundlePath; a relative root.path is taken relative
	// to it.
	Bundle string
	// DevRoot stands for the UVM's /dev when resolving linux.devices; empty
	// means DefaultDevRoot.
	DevRoot string
	// Log receives the setup's notes; nil discards them.
	Log *logrus.Entry
	// Assigned finds the device nodes of assigned vPCI devices named in a
	// workload's windows.devices; nil refuses them.
	Assigned AssignedDevices
}

// AssignedDevices finds the UVM device nodes of a PCI device assigned over
// VMBus (internal/vpci), waiting for them as the reference does.
type AssignedDevices interface {
	DeviceNodes(ctx context.Context, vmbusID string) ([]specs.LinuxDevice, error)
}

func (o Options) log() *logrus.Entry { return logging.Or(o.Log) }

func (o Options) devRoot() string {
	if o.DevRoot == "" {
		return DefaultDevRoot
	}
	return o.DevRoot
}

// rootfs is the container's root filesystem path.
func (o Options) rootfs(spec *specs.Spec) (string, error) {
	if spec.Root == nil || spec.Root.Path == "" {
		return "", fmt.Errorf("%w: root.path is empty", ErrInvalidSpec)
	}
	if filepath.IsAbs(spec.Root.Path) {
		return spec.Root.Path, nil
	}
	if o.Bundle == "" {
		return "", fmt.Errorf("%w: relative root.path %q without a bundle", ErrInvalidSpec, spec.Root.Path)
	}
	return filepath.Join(o.Bundle, spec.Root.Path), nil
}

func checkSpec(spec *specs.Spec) error {
	if spec == nil {
		return fmt.Errorf("%w: no spec", ErrInvalidSpec)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	return nil
}

// hostname is the spec's hostname (validated) or the UVM's.
func (o Options) hostname(spec *specs.Spec) (string, error) {
	if err := ValidateHostname(spec.Hostname); err != nil {
		return "", err
	}
	if spec.Hostname != "" {
		return spec.Hostname, nil
	}
	if err := validateWrittenHostname(o.UVMHostname); err != nil {
		return "", fmt.Errorf("UVM hostname: %w", err)
	}
	return o.UVMHostname, nil
}

// Setup runs the spec setup for kind: SetupSandbox, SetupWorkload or
// SetupStandalone. root is the sandbox root (sandbox, workload: see
// SandboxRoot) or the bundle (standalone).
func Setup(ctx context.Context, kind Kind, id, sandboxID, root string, spec *specs.Spec, opts Options) error {
	switch kind {
	case KindSandbox:
		return SetupSandbox(ctx, id, sandboxID, root, spec, opts)
	case KindWorkload:
		return SetupWorkload(ctx, id, sandboxID, root, spec, opts)
	case KindStandalone:
		return SetupStandalone(ctx, id, root, spec, opts)
	default:
		return fmt.Errorf("container %s: setup of %v", id, kind)
	}
}

// SetupSandbox prepares the spec of sandbox container id of pod sandboxID and
// writes the pod's network files into sandboxRoot (docs/lifecycle.md,
// "Sandbox spec setup"): the hostname (spec's or the UVM's, validated first)
// goes to <root>/hostname and <root>/hosts, opts.DNS to <root>/resolv.conf;
// the user name is resolved, the core rlimit applied, linux.cgroupsPath set
// to /pods/<sandboxID>/<id> and windows cleared. The sandbox gets no bind
// mounts of those files. On error the caller removes the root.
func SetupSandbox(ctx context.Context, id, sandboxID, sandboxRoot string, spec *specs.Spec, opts Options) error {
	if err := checkSpec(spec); err != nil {
		return fmt.Errorf("sandbox container %s: %w", id, err)
	}
	name, err := opts.hostname(spec)
	if err != nil {
		return fmt.Errorf("sandbox container %s: %w", id, err)
	}
	dns := opts.DNS
	if dns == nil {
		if !SkipPodNetworking(spec.Annotations) {
			ns := ""
			if spec.Windows != nil && spec.Windows.Network != nil {
				ns = spec.Windows.Network.NetworkNamespace
			}
			return fmt.Errorf("sandbox container %s: %w: %q", id, ErrNoNetworkNamespace, strings.ToLower(ns))
		}
		opts.log().WithField("cid", id).Info("no network namespace and pod networking skipped: no resolv.conf")
	}
	if err := os.MkdirAll(sandboxRoot, 0o755); err != nil {
		return fmt.Errorf("sandbox container %s: create root: %w", id, err)
	}
	if err := WriteSandboxFiles(sandboxRoot, name, dns); err != nil {
		return fmt.Errorf("sandbox container %s: %w", id, err)
	}
	if err := applyUserAndRLimit(spec, opts); err != nil {
		return fmt.Errorf("sandbox container %s: %w", id, err)
	}
	spec.Linux.CgroupsPath = CgroupsPath(KindSandbox, sandboxID, id)
	spec.Windows = nil
	return nil
}

// SetupWorkload prepares the spec of workload container id in pod sandboxID
// whose root is podRoot (docs/lifecycle.md, "Workload spec setup"): the
// hostname must be empty; special mount prefixes are resolved
// (RewriteSpecialMounts); the pod's hostname, hosts and resolv.conf are bound
// in unless already mounted; the shm annotation is honoured; devices are
// re-resolved against the UVM (or, privileged, all UVM devices are added);
// the core rlimit and user name are applied; linux.cgroupsPath is
// /pods/<sandboxID>/<id>; windows is cleared. Assigned vPCI devices in
// windows.devices ("vpci", "vpci-instance-id": the id is the VMBus instance
// id) are waited for and their device nodes added with an allow rule each
// (opts.Assigned); GPUs are refused with ErrUnsupportedDevice before
// anything is done.
func SetupWorkload(ctx context.Context, id, sandboxID, podRoot string, spec *specs.Spec, opts Options) error {
	if err := checkSpec(spec); err != nil {
		return fmt.Errorf("workload container %s: %w", id, err)
	}
	if spec.Hostname != "" {
		return fmt.Errorf("workload container %s: %w, got %q", id, ErrWorkloadHostname, spec.Hostname)
	}
	if err := checkAssignedDevices(opts.log(), spec, opts.Assigned != nil); err != nil {
		return fmt.Errorf("workload container %s: %w", id, err)
	}
	if err := RewriteSpecialMounts(opts.log(), spec, podRoot); err != nil {
		return fmt.Errorf("workload container %s in pod %s: %w", id, sandboxID, err)
	}
	AddNetworkFileMounts(spec, podRoot)
	if err := ApplyShmSize(spec); err != nil {
		return fmt.Errorf("workload container %s: %w", id, err)
	}
	if Privileged(spec.Annotations) {
		if err := AddAllDevices(opts.log(), spec, opts.devRoot()); err != nil {
			return fmt.Errorf("workload container %s: %w", id, err)
		}
	} else if err := ResolveDevices(opts.log(), spec, opts.devRoot()); err != nil {
		return fmt.Errorf("workload container %s: %w", id, err)
	}
	if err := addAssignedDevices(ctx, opts.log(), spec, opts.Assigned); err != nil {
		return fmt.Errorf("workload container %s: %w", id, err)
	}
	if err := applyUserAndRLimit(spec, opts); err != nil {
		return fmt.Errorf("workload container %s: %w", id, err)
	}
	spec.Linux.CgroupsPath = CgroupsPath(KindWorkload, sandboxID, id)
	spec.Windows = nil
	return nil
}

// SetupStandalone prepares the spec of standalone container id with bundle
// bundle (docs/lifecycle.md, "Standalone spec setup"): for each of
// /etc/hostname, /etc/hosts and /etc/resolv.conf the spec does not mount, the
// file is written into the bundle (atomically, 0644) and bound in;
// resolv.conf comes from opts.DNS (empty when nil). linux.cgroupsPath is
// /pods/<id> and windows is cleared. The user name is not resolved for
// standalone containers.
func SetupStandalone(ctx context.Context, id, bundle string, spec *specs.Spec, opts Options) error {
	if err := checkSpec(spec); err != nil {
		return fmt.Errorf("standalone container %s: %w", id, err)
	}
	name, err := opts.hostname(spec)
	if err != nil {
		return fmt.Errorf("standalone container %s: %w", id, err)
	}
	dns := DNS{}
	if opts.DNS != nil {
		dns = *opts.DNS
	}
	resolv, err := dns.ResolvConf()
	if err != nil {
		return fmt.Errorf("standalone container %s: %w", id, err)
	}
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return fmt.Errorf("standalone container %s: create bundle: %w", id, err)
	}
	content := map[string][]byte{
		HostnameFile: HostnameContent(name),
		HostsFile:    HostsContent(name),
		ResolvFile:   resolv,
	}
	for _, nf := range networkFiles() {
		if MountPresent(spec, nf.dest) {
			continue
		}
		p := filepath.Join(bundle, nf.file)
		if err := WriteFileAtomic(p, content[nf.file], 0o644); err != nil {
			return fmt.Errorf("standalone container %s: %w", id, err)
		}
		spec.Mounts = append(spec.Mounts, bindMount(p, nf.dest, rootReadonly(spec)))
	}
	opts.log().WithFields(logrus.Fields{"cid": id, "hostname": name}).Debug("standalone network files written")
	spec.Linux.CgroupsPath = CgroupsPath(KindStandalone, id, id)
	spec.Windows = nil
	return nil
}

// applyUserAndRLimit resolves process.user.username (if set) to uid/gid
// and appends the RLIMIT_CORE of the rlimitcore annotation (if set).
func applyUserAndRLimit(spec *specs.Spec, opts Options) error {
	if spec.Process != nil && spec.Process.User.Username != "" {
		rootfs, err := opts.rootfs(spec)
		if err != nil {
			return err
		}
		uid, gid, err := ResolveUser(rootfs, spec.Process.User.Username)
		if err != nil {
			return err
		}
		spec.Process.User.UID, spec.Process.User.GID = uid, gid
	}
	if v := spec.Annotations[AnnotationRLimitCore]; v != "" {
		if err := AddCoreRLimit(spec, v); err != nil {
			return err
		}
	}
	return nil
}

// AddCoreRLimit appends RLIMIT_CORE from value "<soft>;<hard>" (decimal
// uint64s).
func AddCoreRLimit(spec *specs.Spec, value string) error {
	soft, hard, ok := strings.Cut(value, ";")
	if !ok || strings.Contains(hard, ";") {
		return fmt.Errorf("%w: %s=%q: want \"<soft>;<hard>\"", ErrInvalidAnnotation, AnnotationRLimitCore, value)
	}
	s, err := strconv.ParseUint(soft, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s soft limit: %w", ErrInvalidAnnotation, AnnotationRLimitCore, err)
	}
	h, err := strconv.ParseUint(hard, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s hard limit: %w", ErrInvalidAnnotation, AnnotationRLimitCore, err)
	}
	if spec.Process == nil {
		spec.Process = &specs.Process{}
	}
	spec.Process.Rlimits = append(spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: s, Hard: h})
	return nil
}

// Assigned device id types of windows.devices (upstream
// internal/guest/spec/spec_devices.go).
const (
	deviceTypeGPU        = "gpu"
	deviceTypeVPCILegacy = "vpci"
	deviceTypeVPCI       = "vpci-instance-id"
)

// checkAssignedDevices refuses windows.devices entries this guest cannot
// honour before anything is done: GPUs (their driver installation and
// NVIDIA hooks are not implemented), and vPCI devices when no lookup is
// configured; unknown id types are logged and ignored as upstream does.
func checkAssignedDevices(log *logrus.Entry, spec *specs.Spec, vpci bool) error {
	if spec.Windows == nil {
		return nil
	}
	for _, d := range spec.Windows.Devices {
		switch d.IDType {
		case deviceTypeGPU:
			return fmt.Errorf("%w: gpu device %q: GPU driver installation and NVIDIA hooks are not implemented", ErrUnsupportedDevice, d.ID)
		case deviceTypeVPCILegacy, deviceTypeVPCI:
			if !vpci {
				return fmt.Errorf("%w: %s device %q: no device lookup configured", ErrUnsupportedDevice, d.IDType, d.ID)
			}
		default:
			log.WithFields(logrus.Fields{"id": d.ID, "idType": d.IDType}).Warn("ignoring assigned device of unknown type")
		}
	}
	return nil
}

// assignedWait bounds the wait for an assigned device and its nodes (the
// reference's bound).
const assignedWait = 60 * time.Second

// addAssignedDevices adds the device nodes of every vPCI device of
// windows.devices to the spec, each with an "rwm" allow rule.
func addAssignedDevices(ctx context.Context, log *logrus.Entry, spec *specs.Spec, a AssignedDevices) error {
	if spec.Windows == nil || a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, assignedWait)
	defer cancel()
	for _, d := range spec.Windows.Devices {
		if d.IDType != deviceTypeVPCILegacy && d.IDType != deviceTypeVPCI {
			continue
		}
		nodes, err := a.DeviceNodes(ctx, d.ID)
		if err != nil {
			return fmt.Errorf("assigned %s device %q: %w", d.IDType, d.ID, err)
		}
		ensureLinuxResources(spec)
		for _, n := range nodes {
			addDevice(log, spec, n, true)
		}
	}
	return nil
}

// ApplyHostNetwork removes the network namespace from linux.namespaces when
// enabled, so the container runs in the UVM's network namespace
// (docs/lifecycle.md, "Create, step by step": Host networking). The caller
// decides enabled with HostNetworkRequested on the sandbox's (or standalone
// container's) annotations.
func ApplyHostNetwork(spec *specs.Spec, enabled bool) {
	if !enabled || spec.Linux == nil {
		return
	}
	out := spec.Linux.Namespaces[:0]
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			out = append(out, ns)
		}
	}
	spec.Linux.Namespaces = out
}

// AddTeeLogDirMount honours the tee-log-dir-mount annotation: it creates
// <root>/logs (mode 0777) if needed and appends a bind mount of it onto
// the annotation's container path (docs/lifecycle.md, "Create, step by
// step": Tee-log directory).
func AddTeeLogDirMount(spec *specs.Spec, root string) error {
	dest := spec.Annotations[AnnotationTeeLogDirMount]
	if dest == "" {
		return nil
	}
	if strings.IndexByte(dest, 0) >= 0 {
		return fmt.Errorf("%w: %s=%q", ErrInvalidAnnotation, AnnotationTeeLogDirMount, dest)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("tee log directory: %w", err)
	}
	if err := mkdirAllPerm(root, filepath.Join(root, LogsDir)); err != nil {
		return fmt.Errorf("tee log directory: %w", err)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: dest,
		Type:        "bind",
		Source:      filepath.Join(root, LogsDir),
		Options:     []string{"bind"},
	})
	return nil
}

// TeeLogPath honours the tee-log-path annotation: the log file is
// <root>/logs/<L>, which must stay below logs/ (symlinks included) and
// must not be logs/ itself; its parent directories are created with mode
// 0777. It returns "" when the annotation is absent.
func TeeLogPath(spec *specs.Spec, root string) (string, error) {
	l := spec.Annotations[AnnotationTeeLogPath]
	if l == "" {
		return "", nil
	}
	logs := filepath.Join(root, LogsDir)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return "", fmt.Errorf("tee log %q: %w", l, err)
	}
	rel, err := safepath.Clean(l)
	if err != nil || rel == "." {
		return "", fmt.Errorf("%w: %s=%q: not a file below %s", ErrInvalidAnnotation, AnnotationTeeLogPath, l, logs)
	}
	if dir := filepath.Dir(rel); dir != "." {
		if _, err := safepath.MkdirAll(logs, dir, 0o777); err != nil {
			return "", fmt.Errorf("tee log %q: %w", l, err)
		}
	}
	p, err := safepath.Join(logs, rel)
	if err != nil {
		return "", fmt.Errorf("tee log %q: %w", l, err)
	}
	if p == logs {
		return "", fmt.Errorf("%w: %s=%q: names the logs directory", ErrInvalidAnnotation, AnnotationTeeLogPath, l)
	}
	return p, nil
}
