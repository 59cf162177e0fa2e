package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CgroupSetup tells which hierarchy init mounted.
type CgroupSetup struct {
	V2          bool
	Controllers []string // v2: enabled in the root's subtree; v1: mounted
}

// SetupCgroups mounts cgroup v2 on /sys/fs/cgroup unless the kernel command
// line asks for v1 (hcsshim.cgroup=v1 or cgroup_no_v2=all) or v2 cannot serve
// runc (no BPF device controller); then it falls back to one v1 mount per
// enabled controller (docs/boot.md, "init (PID 1)": cgroups).
func (c *Config) SetupCgroups(cmd Cmdline) (CgroupSetup, error) {
	wantV1 := cmd.Has("hcsshim.cgroup=v1") || cmd.Has("cgroup_no_v2=all")
	if !wantV1 {
		ctrls, err := c.tryCgroupV2()
		if err == nil {
			return CgroupSetup{V2: true, Controllers: ctrls}, nil
		}
		c.Log.Infof("cgroup v2 not usable, falling back to v1: %v", err)
	}
	ctrls, err := c.cgroupV1()
	return CgroupSetup{Controllers: ctrls}, err
}

var errNoDeviceBPF = errors.New("kernel lacks the BPF cgroup device controller")

func (c *Config) tryCgroupV2() ([]string, error) {
	mnt := c.path("/sys/fs/cgroup")
	if err := unix.Mount("cgroup2", mnt, "cgroup2", nodevNosuidNoexec, ""); err != nil {
		return nil, fmt.Errorf("mount cgroup2: %w", err)
	}
	fail := func(err error) ([]string, error) {
		_ = unix.Unmount(mnt, 0)
		return nil, err
	}
	raw, err := os.ReadFile(c.path("/sys/fs/cgroup/cgroup.controllers"))
	if err != nil {
		return fail(fmt.Errorf("read cgroup.controllers: %w", err))
	}
	if err := probeDeviceBPF(mnt); err != nil {
		return fail(err)
	}
	ctrls := strings.Fields(string(raw))
	if len(ctrls) > 0 {
		var b strings.Builder
		for i, n := range ctrls {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("+" + n)
		}
		if err := os.WriteFile(c.path("/sys/fs/cgroup/cgroup.subtree_control"), []byte(b.String()), 0o644); err != nil {
			c.Log.Warnf("enable cgroup controllers %q: %v", b.String(), err)
		}
	}
	return ctrls, nil
}

// bpfProgQueryAttr is the BPF_PROG_QUERY part of union bpf_attr.
type bpfProgQueryAttr struct {
	targetFD    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

const (
	bpfProgQuery    = 16 // BPF_PROG_QUERY
	bpfCgroupDevice = 6  // BPF_CGROUP_DEVICE
)

// probeDeviceBPF asks whether device programs can be queried on the
// cgroup: ENOSYS/EINVAL mean the kernel cannot do what runc needs on v2.
func probeDeviceBPF(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	attr := bpfProgQueryAttr{targetFD: uint32(fd), attachType: bpfCgroupDevice}
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgQuery, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno == unix.ENOSYS || errno == unix.EINVAL {
		return fmt.Errorf("%w: %w", errNoDeviceBPF, errno)
	}
	return nil
}

func (c *Config) cgroupV1() ([]string, error) {
	f, err := os.Open(c.path("/proc/cgroups"))
	if err != nil {
		return nil, fmt.Errorf("read /proc/cgroups: %w", err)
	}
	defer f.Close()
	base := c.path("/sys/fs/cgroup")
	if err := unix.Mount("cgroup_root", base, "tmpfs", nodevNosuidNoexec, "mode=0755"); err != nil {
		return nil, fmt.Errorf("mount tmpfs on /sys/fs/cgroup: %w", err)
	}
	var mounted []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[3] != "1" {
			continue
		}
		name := fields[0]
		dir := base + "/" + name
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return mounted, fmt.Errorf("mkdir %s: %w", dir, err)
		}
		if err := unix.Mount(name, dir, "cgroup", nodevNosuidNoexec, name); err != nil {
			return mounted, fmt.Errorf("mount cgroup %s: %w", name, err)
		}
		mounted = append(mounted, name)
	}
	if err := sc.Err(); err != nil {
		return mounted, fmt.Errorf("read /proc/cgroups: %w", err)
	}
	if len(mounted) == 0 {
		return nil, ErrNoCgroups
	}
	return mounted, nil
}
