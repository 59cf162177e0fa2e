package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/safepath"
)

// Mount source/destination prefixes the host leaves for the guest to
// resolve (upstream internal/guestpath).
const (
	SandboxMountPrefix      = "sandbox://"
	SandboxTmpfsMountPrefix = "sandbox-tmp://"
	HugePagesMountPrefix    = "hugepages://"
	BlockDevMountPrefix     = "blockdev://"
	UVMMountPrefix          = "uvm://"
)

// Directories of a pod root (docs/lifecycle.md, "Guest directory layout").
const (
	SandboxMountsDir      = "sandboxMounts"
	SandboxTmpfsMountsDir = "sandboxTmpfsMounts"
	HugePagesDir          = "hugepages"
	LogsDir               = "logs"
)

// networkFile is a container path bound from a file of a pod root.
type networkFile struct{ dest, file string }

// networkFiles lists the network files in the order their mounts are
// appended.
func networkFiles() [3]networkFile {
	return [3]networkFile{
		{"/etc/hostname", HostnameFile},
		{"/etc/hosts", HostsFile},
		{"/etc/resolv.conf", ResolvFile},
	}
}

// MountPresent reports whether spec mounts something at dest.
func MountPresent(spec *specs.Spec, dest string) bool {
	return slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

func rootReadonly(spec *specs.Spec) bool { return spec.Root != nil && spec.Root.Readonly }

func bindMount(src, dest string, ro bool) specs.Mount {
	opts := []string{"bind"}
	if ro {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: dest, Type: "bind", Source: src, Options: opts}
}

// AddNetworkFileMounts appends bind mounts of <root>/hostname, hosts and
// resolv.conf onto /etc/hostname, /etc/hosts and /etc/resolv.conf, except
// for destinations the spec already mounts. Options are ["bind"] plus "ro"
// for a read-only root.
func AddNetworkFileMounts(spec *specs.Spec, root string) {
	for _, nf := range networkFiles() {
		if MountPresent(spec, nf.dest) {
			continue
		}
		spec.Mounts = append(spec.Mounts, bindMount(filepath.Join(root, nf.file), nf.dest, rootReadonly(spec)))
	}
}

// mkdirAllPerm creates the directory p below root with mode 0777 for every
// new component (the umask is not applied).
func mkdirAllPerm(root, p string) error {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	_, err = safepath.MkdirAll(root, rel, 0o777)
	return err
}

// PodRootDirs lists the directories of a pod root that PreparePodRoot
// mounts, in the order it mounts them.
func PodRootDirs() [3]string {
	return [3]string{SandboxMountsDir, SandboxTmpfsMountsDir, HugePagesDir}
}

// PreparePodRoot readies the pod root of a sandbox the way the reference
// does at sandbox Create (upstream internal/guest/runtime/hcsv2/uvm.go,
// setupSandbox*Path): sandboxMounts/ and hugepages/ become bind mounts of
// themselves and sandboxTmpfsMounts/ a tmpfs, all three recursively shared
// so that a mount made below them later (by the UVM, or by a workload
// whose mount propagates) reaches every container of the pod; logs/ is
// created with mode 0777 for the tee logs. On error the caller unmounts
// and removes PodRootDirs below root.
func PreparePodRoot(root string) error {
	for _, d := range PodRootDirs() {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("pod root: %w", err)
		}
		if d == SandboxTmpfsMountsDir {
			if err := unix.Mount("tmpfs", p, "tmpfs", 0, ""); err != nil {
				return fmt.Errorf("pod root: mount tmpfs on %s: %w", p, err)
			}
		} else if err := unix.Mount(p, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pod root: bind %s onto itself: %w", p, err)
		}
		if err := unix.Mount("", p, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("pod root: make %s rshared: %w", p, err)
		}
	}
	if err := mkdirAllPerm(root, filepath.Join(root, LogsDir)); err != nil {
		return fmt.Errorf("pod root: logs directory: %w", err)
	}
	return nil
}

// resolveSandboxMount turns a sandbox:// or sandbox-tmp:// source into a
// directory below the pod root's sandboxMounts/ or sandboxTmpfsMounts/,
// creating it (0777) when missing.
func resolveSandboxMount(podRoot, source string) (string, error) {
	dir, sub := SandboxMountsDir, strings.TrimPrefix(source, SandboxMountPrefix)
	if rest, ok := strings.CutPrefix(source, SandboxTmpfsMountPrefix); ok {
		dir, sub = SandboxTmpfsMountsDir, rest
	}
	base := filepath.Join(podRoot, dir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("mount source %q: %w", source, err)
	}
	p, err := safepath.MkdirAll(base, sub, 0o777)
	if err != nil {
		return "", fmt.Errorf("mount source %q: %w: %w", source, ErrInvalidMount, err)
	}
	return p, nil
}

// resolveHugePagesMount turns hugepages://<size>/P into
// <pod root>/hugepages/<size>/P and, when that directory does not exist
// yet, creates it (0777) and mounts hugetlbfs with pagesize=<size> on it.
func resolveHugePagesMount(log *logrus.Entry, podRoot, source string) (string, error) {
	sub, err := safepath.Clean(strings.TrimPrefix(source, HugePagesMountPrefix))
	if err != nil {
		return "", fmt.Errorf("mount source %q: %w: %w", source, ErrInvalidMount, err)
	}
	pageSize, _, _ := strings.Cut(sub, "/")
	if sub == "." || !validPageSize(pageSize) {
		return "", fmt.Errorf("mount source %q: %w: bad page size %q", source, ErrInvalidMount, pageSize)
	}
	base := filepath.Join(podRoot, HugePagesDir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("mount source %q: %w", source, err)
	}
	p, err := safepath.Join(base, sub)
	if err != nil {
		return "", fmt.Errorf("mount source %q: %w: %w", source, ErrInvalidMount, err)
	}
	if _, err := os.Lstat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("mount source %q: %w", source, err)
	}
	if err := mkdirAllPerm(base, p); err != nil {
		return "", fmt.Errorf("mount source %q: %w", source, err)
	}
	if err := unix.Mount("none", p, "hugetlbfs", 0, "pagesize="+pageSize); err != nil {
		return "", fmt.Errorf("mount hugetlbfs (pagesize=%s) on %s: %w", pageSize, p, err)
	}
	log.WithFields(logrus.Fields{"path": p, "pagesize": pageSize}).Debug("mounted hugetlbfs")
	return p, nil
}

// validPageSize accepts a hugetlbfs page size like "2M", "1G" or "2048K".
func validPageSize(s string) bool {
	if len(s) < 2 {
		return false
	}
	switch s[len(s)-1] {
	case 'K', 'k', 'M', 'm', 'G', 'g':
	default:
		return false
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	return err == nil && n > 0
}

// resolveBlockDevMount handles a blockdev://D destination: the source is a
// symlink to a block device in the UVM; the device gets an allow rule
// ("rwm", or "r" for an "ro" mount) and the destination becomes D.
func resolveBlockDevMount(spec *specs.Spec, m *specs.Mount) error {
	target, err := os.Readlink(m.Source)
	if err != nil {
		return fmt.Errorf("block device mount %s: %w: %w", m.Source, ErrInvalidMount, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(m.Source), target)
	}
	n, err := statNode(target)
	if err != nil {
		return fmt.Errorf("block device mount %s -> %s: %w", m.Source, target, err)
	}
	access := "rwm"
	if slices.Contains(m.Options, "ro") {
		access = "r"
	}
	dest := strings.TrimPrefix(m.Destination, BlockDevMountPrefix)
	if !strings.HasPrefix(dest, "/") {
		return fmt.Errorf("block device mount destination %q: %w: not absolute", m.Destination, ErrInvalidMount)
	}
	ensureLinuxResources(spec)
	major, minor := n.Major, n.Minor
	spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
		Allow: true, Type: n.Type, Major: &major, Minor: &minor, Access: access,
	})
	m.Destination = dest
	return nil
}

// resolveUVMMount turns uvm://P into P, which must be an absolute path
// that exists in the UVM.
func resolveUVMMount(source string) (string, error) {
	p := strings.TrimPrefix(source, UVMMountPrefix)
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("mount source %q: %w: not absolute", source, ErrInvalidMount)
	}
	p = filepath.Clean(p)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("mount source %q: %w: %w", source, ErrInvalidMount, err)
	}
	return p, nil
}

// RewriteSpecialMounts resolves the workload mount prefixes against the pod
// root podRoot (docs/lifecycle.md, "Workload spec setup": Special mount
// sources): sandbox://, sandbox-tmp://, hugepages:// and uvm:// sources and
// blockdev:// destinations. Sources below the pod root can never leave their
// directory (see safepath).
func RewriteSpecialMounts(log *logrus.Entry, spec *specs.Spec, podRoot string) error {
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		var err error
		switch {
		case strings.HasPrefix(m.Source, SandboxMountPrefix), strings.HasPrefix(m.Source, SandboxTmpfsMountPrefix):
			m.Source, err = resolveSandboxMount(podRoot, m.Source)
		case strings.HasPrefix(m.Source, HugePagesMountPrefix):
			m.Source, err = resolveHugePagesMount(log, podRoot, m.Source)
		case strings.HasPrefix(m.Source, UVMMountPrefix):
			m.Source, err = resolveUVMMount(m.Source)
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(m.Destination, BlockDevMountPrefix) {
			if err := resolveBlockDevMount(spec, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// ApplyShmSize honours the shm size annotation: a positive size N (KiB)
// replaces every /dev/shm mount with a tmpfs "shm" mounted
// nosuid,noexec,nodev,mode=1777,size=<N>k. Zero or a non-number is
// ErrInvalidAnnotation.
func ApplyShmSize(spec *specs.Spec) error {
	v, ok := spec.Annotations[AnnotationShmSizeKB]
	if !ok {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return fmt.Errorf("%w: %s=%q: must be a positive integer", ErrInvalidAnnotation, AnnotationShmSizeKB, v)
	}
	spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: "/dev/shm",
		Type:        "tmpfs",
		Source:      "shm",
		Options:     []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatUint(n, 10) + "k"},
	})
	return nil
}
