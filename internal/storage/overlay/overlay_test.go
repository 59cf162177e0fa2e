package overlay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/storage/overlay"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
)

// makeLayers creates two layer directories: "top" overrides "shared" and
// adds "top-only"; "base" has "shared" and "base-only".
func makeLayers(t *testing.T, root string) (top, base string) {
	t.Helper()
	top = filepath.Join(root, "layers", "top")
	base = filepath.Join(root, "layers", "base")
	for dir, files := range map[string]map[string]string{
		top:  {"shared": "top", "top-only": "t"},
		base: {"shared": "base", "base-only": "b"},
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return top, base
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMountUnmount(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	tests := []struct {
		name string
		// bundle and scratch relative to the tmpfs root; scratch "" = read-only.
		bundle, scratch string
		wantBind        bool
	}{
		{name: "scratch inside bundle (v1 sandbox)", bundle: "c/S", scratch: "c/S/scratch/S"},
		{name: "shared scratch outside bundle", bundle: "c/W", scratch: "c/S/scratch/W", wantBind: true},
		{name: "v2 scratch on scsi mount", bundle: "pods/P/C", scratch: "scsi/0_1_0/scratch/P/C", wantBind: true},
		{name: "read-only without scratch", bundle: "c/R"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := storagetest.Tmpfs(t)
			top, base := makeLayers(t, root)
			bundle := filepath.Join(root, tc.bundle)
			rootfs := filepath.Join(bundle, "rootfs")
			scratch := ""
			if tc.scratch != "" {
				scratch = filepath.Join(root, tc.scratch)
			}
			if got := overlay.NeedsBundleBind(scratch, rootfs); got != tc.wantBind {
				t.Fatalf("NeedsBundleBind = %v, want %v", got, tc.wantBind)
			}
			if err := overlay.Mount(logging.Discard(), []string{top, base}, scratch, rootfs); err != nil {
				t.Fatalf("Mount: %v", err)
			}
			t.Cleanup(func() {
				_ = overlay.Unmount(ctx, rootfs)
				_ = overlay.UnbindBundle(logging.Discard(), scratch, rootfs)
			})
			if !storagetest.IsMounted(t, rootfs) {
				t.Fatalf("%s is not mounted", rootfs)
			}
			// Layer order: the first layer is the top-most.
			if got := readFile(t, filepath.Join(rootfs, "shared")); got != "top" {
				t.Errorf("shared = %q, want the top layer's content", got)
			}
			for _, f := range []string{"top-only", "base-only"} {
				if _, err := os.Stat(filepath.Join(rootfs, f)); err != nil {
					t.Errorf("%s missing from union: %v", f, err)
				}
			}
			err := os.WriteFile(filepath.Join(rootfs, "new"), []byte("x"), 0o644)
			if scratch == "" {
				if !errors.Is(err, unix.EROFS) {
					t.Errorf("write to read-only rootfs: err = %v, want EROFS", err)
				}
			} else {
				if err != nil {
					t.Fatalf("write to rootfs: %v", err)
				}
				if got := readFile(t, filepath.Join(overlay.UpperDir(scratch), "new")); got != "x" {
					t.Errorf("upper dir content = %q", got)
				}
				if _, err := os.Stat(overlay.WorkDir(scratch)); err != nil {
					t.Errorf("work dir: %v", err)
				}
			}
			if got := storagetest.IsMounted(t, bundle); got != tc.wantBind {
				t.Errorf("bundle mounted = %v, want %v", got, tc.wantBind)
			}
			if tc.wantBind {
				// Bundle files land on the scratch.
				if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
				if got := readFile(t, filepath.Join(overlay.BundleBacking(scratch), "config.json")); got != "{}" {
					t.Errorf("bundle file not on scratch: %q", got)
				}
			}

			if err := overlay.Unmount(ctx, rootfs); err != nil {
				t.Fatalf("Unmount: %v", err)
			}
			if _, err := os.Stat(rootfs); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("rootfs still exists after Unmount: %v", err)
			}
			if err := overlay.UnbindBundle(logging.Discard(), scratch, rootfs); err != nil {
				t.Fatalf("UnbindBundle: %v", err)
			}
			if _, err := os.Stat(bundle); err != nil {
				t.Errorf("bundle directory must be kept: %v", err)
			}
			storagetest.NoMountsUnder(t, filepath.Join(root, "c"))
			storagetest.NoMountsUnder(t, filepath.Join(root, "pods"))
			// A layer is never modified.
			if _, err := os.Stat(filepath.Join(top, "new")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("write leaked into a layer")
			}
		})
	}
}

func TestMountRollsBack(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	tests := []struct {
		name            string
		bundle, scratch string
	}{
		{name: "bundle bind rolled back", bundle: "c/W", scratch: "c/S/scratch/W"},
		{name: "scratch inside bundle", bundle: "c/S", scratch: "c/S/scratch/S"},
		{name: "read-only", bundle: "c/R"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := storagetest.Tmpfs(t)
			top, _ := makeLayers(t, root)
			missing := filepath.Join(root, "layers", "missing")
			rootfs := filepath.Join(root, tc.bundle, "rootfs")
			scratch := ""
			if tc.scratch != "" {
				scratch = filepath.Join(root, tc.scratch)
			}
			err := overlay.Mount(logging.Discard(), []string{top, missing}, scratch, rootfs)
			if err == nil {
				_ = overlay.Unmount(ctx, rootfs)
				_ = overlay.UnbindBundle(logging.Discard(), scratch, rootfs)
				t.Fatal("Mount with a missing layer succeeded")
			}
			if !errors.Is(err, unix.ENOENT) {
				t.Errorf("error %v does not carry ENOENT", err)
			}
			storagetest.NoMountsUnder(t, filepath.Join(root, "c"))
			// Everything Mount created is gone: only the layers remain.
			if _, err := os.Stat(filepath.Join(root, "c")); !errors.Is(err, os.ErrNotExist) {
				ents, _ := os.ReadDir(filepath.Join(root, "c"))
				t.Errorf("created directories left behind: %v", ents)
			}
		})
	}
}

func TestMountKeepsExistingDirectories(t *testing.T) {
	storagetest.RequireRoot(t)
	root := storagetest.Tmpfs(t)
	top, _ := makeLayers(t, root)
	bundle := filepath.Join(root, "c", "S")
	scratch := filepath.Join(bundle, "scratch", "S")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := overlay.Mount(logging.Discard(), []string{top, filepath.Join(root, "nope")}, scratch, filepath.Join(bundle, "rootfs"))
	if err == nil {
		t.Fatal("Mount with a missing layer succeeded")
	}
	ents, err := os.ReadDir(bundle)
	if err != nil {
		t.Fatalf("pre-existing bundle removed: %v", err)
	}
	if len(ents) != 1 || ents[0].Name() != "config.json" {
		t.Errorf("bundle content after rollback = %v, want only config.json", ents)
	}
}

func TestMountRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name            string
		layers          []string
		scratch, rootfs string
		want            error
	}{
		{"empty rootfs", []string{"/l"}, "", "", overlay.ErrNoRootfs},
		{"relative rootfs", []string{"/l"}, "", "run/rootfs", overlay.ErrBadPath},
		{"unclean rootfs", []string{"/l"}, "", "/run/c/../../etc/rootfs", overlay.ErrBadPath},
		{"no layers", nil, "", "/run/c/rootfs", overlay.ErrNoLayers},
		{"colon in layer", []string{"/l:/etc"}, "", "/run/c/rootfs", overlay.ErrBadPath},
		{"comma in layer", []string{"/l,upperdir=/etc"}, "", "/run/c/rootfs", overlay.ErrBadPath},
		{"relative layer", []string{"l"}, "", "/run/c/rootfs", overlay.ErrBadPath},
		{"comma in scratch", []string{"/l"}, "/s,x=y", "/run/c/rootfs", overlay.ErrBadPath},
		{"unclean scratch", []string{"/l"}, "/s/../x", "/run/c/rootfs", overlay.ErrBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := overlay.Mount(logging.Discard(), tc.layers, tc.scratch, tc.rootfs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Mount = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUnmountTolerant(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	root := storagetest.Tmpfs(t)
	if err := overlay.Unmount(ctx, filepath.Join(root, "never-created")); err != nil {
		t.Errorf("Unmount of a missing path: %v", err)
	}
	plain := filepath.Join(root, "plain")
	if err := os.MkdirAll(filepath.Join(plain, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := overlay.Unmount(ctx, plain); err != nil {
		t.Errorf("Unmount of an unmounted dir: %v", err)
	}
	if _, err := os.Stat(plain); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unmounted dir not removed")
	}
	// Unbinding a bundle that was never bound is a no-op.
	if err := overlay.UnbindBundle(logging.Discard(), filepath.Join(root, "s"), filepath.Join(root, "b", "rootfs")); err != nil {
		t.Errorf("UnbindBundle of unbound bundle: %v", err)
	}
}
