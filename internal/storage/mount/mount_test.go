package mount_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/mount"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
)

func TestUnmountAndRemove(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		stacked int // tmpfs mounts stacked on the target
		missing bool
	}{
		{name: "missing path", missing: true},
		{name: "not mounted", stacked: 0},
		{name: "one mount", stacked: 1},
		{name: "three stacked mounts", stacked: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := storagetest.Tmpfs(t)
			target := filepath.Join(root, "m", "target")
			if !tc.missing {
				if err := os.MkdirAll(target, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < tc.stacked; i++ {
				if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := mount.UnmountAndRemove(ctx, target); err != nil {
				t.Fatalf("UnmountAndRemove: %v", err)
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("target still exists: %v", err)
			}
			storagetest.NoMountsUnder(t, filepath.Join(root, "m"))
		})
	}
}

func TestUnmountAndRemoveRefusesMountsBelow(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	root := storagetest.Tmpfs(t)
	target := filepath.Join(root, "target")
	inner := filepath.Join(target, "inner")
	if err := os.MkdirAll(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(inner, unix.MNT_DETACH) })
	keep := filepath.Join(inner, "precious")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := mount.UnmountAndRemove(ctx, target)
	if !errors.Is(err, mount.ErrMountsBelow) {
		t.Fatalf("UnmountAndRemove = %v, want ErrMountsBelow", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("file on the inner mount was deleted: %v", err)
	}
}

func TestApplyPropagation(t *testing.T) {
	storagetest.RequireRoot(t)
	root := storagetest.Tmpfs(t)
	target := filepath.Join(root, "p")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	tests := []struct {
		options []string
		want    string // optional field expected in mountinfo ("" = none)
	}{
		{[]string{"ro", "private"}, ""},
		{[]string{"rshared", "nosuid"}, "shared:"},
		{[]string{"private"}, ""},
		{[]string{"unbindable"}, "unbindable"},
	}
	for _, tc := range tests {
		if err := mount.ApplyPropagation(target, tc.options); err != nil {
			t.Fatalf("ApplyPropagation(%v): %v", tc.options, err)
		}
		opt := optionalFields(t, target)
		if tc.want == "" && opt != "" || tc.want != "" && !strings.Contains(opt, tc.want) {
			t.Errorf("after %v: optional fields %q, want %q", tc.options, opt, tc.want)
		}
	}
	if _, err := mount.PropagationFlags("ro"); !errors.Is(err, mount.ErrUnknownPropagation) {
		t.Errorf("PropagationFlags(ro) = %v", err)
	}
}

// optionalFields returns the optional mountinfo fields of target.
func optionalFields(t *testing.T, target string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && f[4] == target {
			var opt []string
			for _, x := range f[6:] {
				if x == "-" {
					break
				}
				opt = append(opt, x)
			}
			return strings.Join(opt, " ")
		}
	}
	t.Fatalf("%s not in mountinfo", target)
	return ""
}

func TestIsMountPointEscapedPath(t *testing.T) {
	storagetest.RequireRoot(t)
	root := storagetest.Tmpfs(t)
	target := filepath.Join(root, "with space\tand tab")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	got, err := mount.IsMountPoint(target)
	if err != nil || !got {
		t.Fatalf("IsMountPoint = %v, %v; want true", got, err)
	}
	if err := mount.Unmount(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if got, _ := mount.IsMountPoint(target); got {
		t.Errorf("still a mount point after Unmount")
	}
}
