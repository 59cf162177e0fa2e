package uvm

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/mount"
)

// TestRemoveAroundKeepsMounts checks that removing a bundle never reaches
// into a file system mounted inside it.
func TestRemoveAroundKeepsMounts(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{rootfs, filepath.Join(bundle, "scratch", "x")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", rootfs, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(rootfs, unix.MNT_DETACH) })
	precious := filepath.Join(rootfs, "etc-passwd")
	if err := os.WriteFile(precious, []byte("root"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{}"), 0o644)

	mounts, err := mount.MountsUnder(bundle)
	if err != nil || len(mounts) != 1 || mounts[0] != rootfs {
		t.Fatalf("mountsUnder = %v, %v", mounts, err)
	}
	if err := removeAround(bundle, map[string]bool{rootfs: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("file inside the mount was removed: %v", err)
	}
	for _, gone := range []string{filepath.Join(bundle, "config.json"), filepath.Join(bundle, "scratch")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Fatalf("%s not removed", gone)
		}
	}
	if err := unix.Unmount(rootfs, 0); err != nil {
		t.Fatal(err)
	}
	if err := removeAround(bundle, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Fatal("bundle not removed once nothing was mounted in it")
	}
}
