package storagetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test when not running as root (the CI runs as root).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root (mounts and loop devices)")
	}
}

// Tmpfs mounts a fresh tmpfs on a new directory under t.TempDir() and
// unmounts it in Cleanup. It also registers a leak check: at Cleanup no
// mount may remain below the directory.
func Tmpfs(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		left := mountsUnder(t, dir)
		for i := len(left) - 1; i >= 0; i-- {
			if left[i] == dir {
				continue
			}
			t.Errorf("leaked mount %s", left[i])
			_ = unix.Unmount(left[i], unix.MNT_DETACH)
		}
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// NoMountsUnder fails the test if anything is mounted at or below dir.
func NoMountsUnder(t testing.TB, dir string) {
	t.Helper()
	for _, m := range mountsUnder(t, dir) {
		t.Errorf("mount left behind: %s", m)
	}
}

// IsMounted reports whether p is a mount point.
func IsMounted(t testing.TB, p string) bool {
	t.Helper()
	for _, m := range mountsUnder(t, p) {
		if m == p {
			return true
		}
	}
	return false
}

func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := f[4]
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// SparseFile creates a file of size bytes under t.TempDir().
func SparseFile(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// Mkfs formats path (file or device) with fstype ("ext4" or "xfs").
func Mkfs(t testing.TB, fstype, path string) {
	t.Helper()
	var cmd *exec.Cmd
	switch fstype {
	case "ext4":
		cmd = exec.Command("mkfs.ext4", "-q", "-F", path)
	case "xfs":
		cmd = exec.Command("mkfs.xfs", "-q", "-f", path)
	default:
		t.Fatalf("unknown fstype %q", fstype)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", cmd.Args, err, out)
	}
}

// Loop attaches file to a free loop device (read-only if ro) and returns
// the device path (/dev/loopN). The device is detached in Cleanup, and the
// cleanup fails the test if it cannot be.
func Loop(t testing.TB, file string, ro bool) string {
	t.Helper()
	return loop(t, file, ro, 0, 0)
}

// LoopRange attaches size bytes of file starting at offset to a loop
// device: a real block device holding exactly that range (e.g. one
// partition of a disk image, without needing the kernel's partition table
// support).
func LoopRange(t testing.TB, file string, offset, size uint64) string {
	t.Helper()
	return loop(t, file, false, offset, size)
}

func loop(t testing.TB, file string, ro bool, offset, size uint64) string {
	t.Helper()
	dev, err := attach(file, ro, offset, size)
	if err != nil {
		t.Fatalf("attach loop device for %s: %v", file, err)
	}
	t.Cleanup(func() {
		if err := detach(dev); err != nil {
			t.Errorf("detach %s: %v", dev, err)
		}
	})
	return dev
}

func attach(file string, ro bool, offset, size uint64) (string, error) {
	flag := os.O_RDWR
	if ro {
		flag = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, flag, 0)
	if err != nil {
		return "", err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	// Another test (or engineer) may grab the same free number: retry.
	for attempt := 0; attempt < 50; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := openWait(dev)
		if err != nil {
			return "", err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Offset = offset
		cfg.Info.Sizelimit = size
		if ro {
			cfg.Info.Flags |= unix.LO_FLAGS_READ_ONLY
		}
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		lf.Close()
		if errors.Is(err, unix.EBUSY) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("LOOP_CONFIGURE %s: %w", dev, err)
		}
		return dev, nil
	}
	return "", errors.New("no free loop device after retries")
}

// openWait opens a freshly created loop node, giving devtmpfs a moment.
func openWait(dev string) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err == nil || i >= 100 || !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func detach(dev string) error {
	var last error
	for i := 0; i < 50; i++ {
		f, err := os.OpenFile(dev, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
		f.Close()
		if err == nil || errors.Is(err, unix.ENXIO) {
			return nil
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// LoopBackingFile returns the backing file of a loop device ("" if none).
func LoopBackingFile(dev string) string {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// NoLoopsFor fails the test if a loop device is still attached to a file
// below dir.
func NoLoopsFor(t testing.TB, dir string) {
	t.Helper()
	ents, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		if f := strings.TrimSpace(string(b)); strings.HasPrefix(f, dir) {
			t.Errorf("loop device %s still attached to %s", filepath.Base(filepath.Dir(filepath.Dir(e))), f)
		}
	}
}
