package pmem_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/storage/pmem"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
)

func TestSingleLayer(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	roots := storagetest.FakeRoots(t)
	img := storagetest.LayerImage(t, "layer.img", map[string]string{"etc/os-release": "layer0"}, false)
	storagetest.BlockNode(t, roots.DevPath("pmem3"), storagetest.Loop(t, img, true))
	d := pmem.New(roots)
	root := storagetest.Tmpfs(t)
	cfg := pmem.Config{DeviceNumber: 3, MountPath: filepath.Join(root, "run", "layers", "p3")}
	if err := d.Mount(ctx, cfg); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() { _ = d.Unmount(ctx, cfg) })
	b, err := os.ReadFile(filepath.Join(cfg.MountPath, "etc", "os-release"))
	if err != nil || string(b) != "layer0" {
		t.Fatalf("layer content %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.MountPath, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("layer writable: %v", err)
	}
	if err := d.Unmount(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.MountPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point not removed")
	}
	storagetest.NoMountsUnder(t, filepath.Join(root, "run"))
}

func TestMissingDeviceTimesOut(t *testing.T) {
	storagetest.RequireRoot(t)
	roots := storagetest.FakeRoots(t)
	d := pmem.New(roots)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := d.Mount(ctx, pmem.Config{DeviceNumber: 9, MountPath: filepath.Join(t.TempDir(), "p9")})
	if !errors.Is(err, devices.ErrTimeout) || !strings.Contains(err.Error(), "pmem9") {
		t.Fatalf("Mount = %v, want a timeout naming pmem9", err)
	}
}

// packed writes two layer images into one file at 4 KiB-aligned offsets, as
// the host packs layers into one VPMem device.
func packed(t *testing.T, withVerity bool) (string, []pmem.Mapping) {
	t.Helper()
	var maps []pmem.Mapping
	var all []byte
	for i := 0; i < 2; i++ {
		img := storagetest.LayerImage(t, fmt.Sprintf("l%d.img", i), map[string]string{"id": fmt.Sprint(i)}, withVerity)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		for len(b)%4096 != 0 {
			b = append(b, 0)
		}
		maps = append(maps, pmem.Mapping{Offset: uint64(len(all)), Size: uint64(len(b))})
		all = append(all, b...)
	}
	p := filepath.Join(t.TempDir(), "packed.img")
	if err := os.WriteFile(p, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, maps
}

func TestMultiMapped(t *testing.T) {
	storagetest.RequireDeviceMapper(t, "dm-linear-pmem")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	roots := storagetest.FakeRoots(t)
	file, maps := packed(t, false)
	storagetest.BlockNode(t, roots.DevPath("pmem0"), storagetest.Loop(t, file, true))
	d := pmem.New(roots)
	root := storagetest.Tmpfs(t)
	var cfgs []pmem.Config
	for i, m := range maps {
		m := m
		cfg := pmem.Config{MountPath: filepath.Join(root, fmt.Sprintf("p0-%d-%d", m.Offset, m.Size)), Mapping: &m}
		if err := d.Mount(ctx, cfg); err != nil {
			t.Fatalf("Mount layer %d: %v", i, err)
		}
		t.Cleanup(func() { _ = d.Unmount(ctx, cfg) })
		cfgs = append(cfgs, cfg)
	}
	for i, cfg := range cfgs {
		b, err := os.ReadFile(filepath.Join(cfg.MountPath, "id"))
		if err != nil || string(b) != fmt.Sprint(i) {
			t.Errorf("layer %d reads %q, %v", i, b, err)
		}
	}
	for _, cfg := range cfgs {
		if err := d.Unmount(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(roots.DevPath("mapper", pmem.LinearName(0, *cfg.Mapping))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("linear node not removed")
		}
	}
}

func TestVerity(t *testing.T) {
	storagetest.RequireDeviceMapper(t, "dm-verity-pmem")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	roots := storagetest.FakeRoots(t)
	img := storagetest.LayerImage(t, "v.img", map[string]string{"data": strings.Repeat("verified ", 2000)}, true)
	good := storagetest.Loop(t, img, true)
	// A copy with one byte of file data flipped.
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "verified ")
	b[i] ^= 0xff
	badImg := filepath.Join(t.TempDir(), "bad.img")
	if err := os.WriteFile(badImg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := storagetest.Loop(t, badImg, true)
	storagetest.BlockNode(t, roots.DevPath("pmem1"), good)
	storagetest.BlockNode(t, roots.DevPath("pmem2"), bad)
	d := pmem.New(roots)
	root := storagetest.Tmpfs(t)
	for _, tc := range []struct {
		n      uint32
		wantOK bool
	}{{1, true}, {2, false}} {
		cfg := pmem.Config{DeviceNumber: tc.n, MountPath: filepath.Join(root, fmt.Sprint("p", tc.n)), Verity: true}
		if err := d.Mount(ctx, cfg); err != nil {
			t.Fatalf("Mount pmem%d: %v", tc.n, err)
		}
		_, rerr := os.ReadFile(filepath.Join(cfg.MountPath, "data"))
		if tc.wantOK && rerr != nil {
			t.Errorf("verified layer unreadable: %v", rerr)
		}
		if !tc.wantOK && rerr == nil {
			t.Errorf("corrupted layer read without error")
		}
		if err := d.Unmount(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
}
