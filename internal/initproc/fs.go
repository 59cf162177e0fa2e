package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

type opKind int

const (
	opMount opKind = iota
	opMkdir
	opSymlink
)

// fsOp is one step of the early file system setup; paths are relative to
// the configured root.
type fsOp struct {
	kind   opKind
	source string // mount source / symlink target
	target string
	fstype string
	flags  uintptr
	data   string
	mode   os.FileMode
}

const (
	nodevNosuidNoexec = unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC
)

// baseOps are the early file systems of docs/boot.md, "init (PID 1)", after
// /dev.
var baseOps = []fsOp{
	{kind: opMount, source: "proc", target: "/proc", fstype: "proc", flags: nodevNosuidNoexec},
	{kind: opSymlink, source: "/proc/self/fd", target: "/dev/fd"},
	{kind: opSymlink, source: "/proc/self/fd/0", target: "/dev/stdin"},
	{kind: opSymlink, source: "/proc/self/fd/1", target: "/dev/stdout"},
	{kind: opSymlink, source: "/proc/self/fd/2", target: "/dev/stderr"},
	{kind: opMount, source: "tmpfs", target: "/run", fstype: "tmpfs", flags: nodevNosuidNoexec, data: "mode=0755"},
	{kind: opMount, source: "tmpfs", target: "/tmp", fstype: "tmpfs", flags: nodevNosuidNoexec},
	{kind: opMkdir, target: "/dev/shm", mode: 0o755},
	{kind: opMount, source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: nodevNosuidNoexec},
	{kind: opMkdir, target: "/dev/pts", mode: 0o755},
	{kind: opMount, source: "devpts", target: "/dev/pts", fstype: "devpts", flags: unix.MS_NOSUID | unix.MS_NOEXEC, data: "newinstance,ptmxmode=0666"},
	{kind: opMount, source: "sysfs", target: "/sys", fstype: "sysfs", flags: nodevNosuidNoexec},
}

// overlayOps are the -w writable overlays on /etc and /var (step 5).
var overlayOps = []fsOp{
	{kind: opMkdir, target: "/run/over", mode: 0o755},
	{kind: opMount, source: "tmpfs", target: "/run/over", fstype: "tmpfs", flags: nodevNosuidNoexec, data: "size=40%,mode=0755"},
	{kind: opMkdir, target: "/run/over/etc", mode: 0o755},
	{kind: opMkdir, target: "/run/over/etc/upper", mode: 0o755},
	{kind: opMkdir, target: "/run/over/etc/work", mode: 0o755},
	{kind: opMount, source: "overlay", target: "/etc", fstype: "overlay", flags: nodevNosuidNoexec,
		data: "lowerdir={root}/etc,upperdir={root}/run/over/etc/upper,workdir={root}/run/over/etc/work"},
	{kind: opMkdir, target: "/run/over/var", mode: 0o755},
	{kind: opMkdir, target: "/run/over/var/upper", mode: 0o755},
	{kind: opMkdir, target: "/run/over/var/work", mode: 0o755},
	{kind: opMount, source: "overlay", target: "/var", fstype: "overlay", flags: unix.MS_NODEV | unix.MS_NOSUID,
		data: "lowerdir={root}/var,upperdir={root}/run/over/var/upper,workdir={root}/run/over/var/work"},
}

func (c *Config) path(p string) string { return filepath.Join(c.Root, p) }

func (c *Config) expand(s string) string {
	root := filepath.Clean(c.Root)
	if root == "/" {
		root = ""
	}
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '{' && len(s) >= i+6 && s[i:i+6] == "{root}" {
			out = append(out, root...)
			i += 5
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// MountDev mounts devtmpfs on /dev; "already mounted" is fine.
func (c *Config) MountDev() error {
	err := unix.Mount("dev", c.path("/dev"), "devtmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "")
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount devtmpfs on /dev: %w", err)
	}
	return nil
}

func (c *Config) runOps(ops []fsOp) error {
	for _, op := range ops {
		target := c.path(op.target)
		switch op.kind {
		case opMount:
			if err := unix.Mount(op.source, target, op.fstype, op.flags, c.expand(op.data)); err != nil {
				return fmt.Errorf("mount %s on %s: %w", op.fstype, op.target, err)
			}
		case opMkdir:
			if err := unix.Mkdir(target, uint32(op.mode)); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("mkdir %s: %w", op.target, err)
			}
		case opSymlink:
			if err := unix.Symlink(op.source, target); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("symlink %s: %w", op.target, err)
			}
		}
	}
	return nil
}

// SetupFS mounts /dev and the fixed file systems, and the writable overlays
// when asked (docs/boot.md, "init (PID 1)": devtmpfs, Early file systems,
// Writable overlays).
func (c *Config) SetupFS(overlay bool) error {
	if err := c.MountDev(); err != nil {
		return err
	}
	if err := c.runOps(baseOps); err != nil {
		return err
	}
	if overlay {
		return c.runOps(overlayOps)
	}
	return nil
}
