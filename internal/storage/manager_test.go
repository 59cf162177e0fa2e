package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opengcs/opengcs/internal/storage"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

func hresult(err error) prot.HResult {
	var pe *prot.Error
	if errors.As(err, &pe) {
		return pe.Result
	}
	return 0
}

func TestValidation(t *testing.T) {
	m := storage.NewManager(storagetest.FakeRoots(t), transport.NewUnix(filepath.Join(t.TempDir(), "h")), nil)
	ctx := context.Background()
	// m2's mount root holds a symlink leading out of it and a symlink to a
	// device, as a BlockDev mount leaves it.
	mroot := t.TempDir()
	if err := os.Symlink(t.TempDir(), filepath.Join(mroot, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(mroot, "link")); err != nil {
		t.Fatal(err)
	}
	m2 := storage.NewManager(storagetest.FakeRoots(t), transport.NewUnix(filepath.Join(t.TempDir(), "h")), nil, storage.WithMountRoot(mroot))
	tests := []struct {
		name string
		call func() error
		want prot.HResult
	}{
		{"relative disk path", func() error {
			return m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "run/m"})
		}, prot.HrVmcomputeInvalidJSON},
		{"escaping disk path", func() error {
			return m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/../../etc"})
		}, prot.HrVmcomputeInvalidJSON},
		{"controller 4", func() error {
			return m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "/run/m", Controller: 4})
		}, prot.HrFail},
		{"LUN 64", func() error {
			return m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "/run/m", Lun: 64})
		}, prot.HrFail},
		{"option injection", func() error {
			return m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "/run/m", Options: []string{"ro,exec"}})
		}, prot.HrVmcomputeInvalidJSON},
		{"unplug controller 9", func() error { return m.RemoveSCSIDevice(ctx, &prot.SCSIDevice{Controller: 9}) }, prot.HrFail},
		{"vpmem unclean path", func() error {
			return m.AddVPMem(ctx, &prot.LCOWMappedVPMemDevice{MountPath: "/run/layers/./p0"})
		}, prot.HrVmcomputeInvalidJSON},
		{"plan9 negative port", func() error {
			return m.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: "/run/x", Port: -1})
		}, prot.HrVmcomputeInvalidJSON},
		{"layer escaping", func() error {
			return m.AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs", Layers: []prot.Layer{{Path: "/run/layers/../../etc"}}})
		}, prot.HrVmcomputeInvalidJSON},
		{"scratch relative", func() error {
			return m.AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs", ScratchPath: "scratch"})
		}, prot.HrVmcomputeInvalidJSON},
		{"disk path outside the mount root", func() error {
			return m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "/var/m"})
		}, prot.HrFail},
		{"disk path is the mount root", func() error {
			return m.RemoveMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: "/run"})
		}, prot.HrFail},
		{"vpmem remove outside the mount root", func() error {
			return m.RemoveVPMem(ctx, &prot.LCOWMappedVPMemDevice{MountPath: "/usr"})
		}, prot.HrFail},
		{"rootfs through a symlink out of the mount root", func() error {
			return m2.AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: filepath.Join(mroot, "out", "rootfs"), Layers: []prot.Layer{{Path: "/l"}}})
		}, prot.HrFail},
		{"block device link may itself be a symlink", func() error {
			return m2.RemoveMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: filepath.Join(mroot, "link"), BlockDev: true})
		}, 0},
		{"but not through one", func() error {
			return m2.RemoveMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{MountPath: filepath.Join(mroot, "out", "x"), BlockDev: true})
		}, prot.HrFail},
		{"no layers", func() error {
			return m.AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs"})
		}, prot.HrFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := hresult(err); got != tc.want {
				t.Fatalf("err = %v (%v), want %v", err, got, tc.want)
			}
		})
	}
	// Empty MountPath is a no-op success.
	if err := m.AddMappedVirtualDisk(ctx, &prot.LCOWMappedVirtualDisk{}); err != nil {
		t.Errorf("empty MountPath: %v", err)
	}
}

func TestDiskLayersRootfs(t *testing.T) {
	storagetest.RequireRoot(t)
	ctx := context.Background()
	roots := storagetest.FakeRoots(t)
	guid, _ := scsi.ControllerGUID(0)
	storagetest.AddSCSIHost(t, roots, guid, 0)
	scratchImg := storagetest.SparseFile(t, "scratch.img", 64<<20)
	storagetest.AddSCSIDisk(t, roots, 0, 1, "sdb", storagetest.Loop(t, scratchImg, false), nil)
	layer := storagetest.LayerImage(t, "layer.img", map[string]string{"bin/sh": "shell"}, false)
	storagetest.BlockNode(t, roots.DevPath("pmem0"), storagetest.Loop(t, layer, true))
	root := storagetest.Tmpfs(t)
	m := storage.NewManager(roots, transport.NewUnix(filepath.Join(t.TempDir(), "h")), nil, storage.WithMountRoot(filepath.Join(root, "run")))

	bundle := filepath.Join(root, "run/gcs/c/S")
	disk := &prot.LCOWMappedVirtualDisk{MountPath: bundle, Lun: 1, EnsureFilesystem: true, Filesystem: "ext4"}
	vpmem := &prot.LCOWMappedVPMemDevice{DeviceNumber: 0, MountPath: filepath.Join(root, "run/layers/p0")}
	layers := &prot.LCOWCombinedLayers{
		ContainerRootPath: filepath.Join(bundle, "rootfs"),
		Layers:            []prot.Layer{{Path: vpmem.MountPath}},
		ScratchPath:       filepath.Join(bundle, "scratch/S"),
	}
	if err := m.AddMappedVirtualDisk(ctx, disk); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.RemoveMappedVirtualDisk(ctx, disk) })
	if err := m.AddVPMem(ctx, vpmem); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.RemoveVPMem(ctx, vpmem) })
	if err := m.AddCombinedLayers(ctx, layers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.RemoveCombinedLayers(ctx, layers) })
	if b, err := os.ReadFile(filepath.Join(layers.ContainerRootPath, "bin/sh")); err != nil || string(b) != "shell" {
		t.Fatalf("rootfs content %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(layers.ContainerRootPath, "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return m.RemoveCombinedLayers(ctx, layers) },
		func() error { return m.RemoveVPMem(ctx, vpmem) },
		func() error { return m.RemoveMappedVirtualDisk(ctx, disk) },
		func() error { return m.RemoveSCSIDevice(ctx, &prot.SCSIDevice{Lun: 1}) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	storagetest.NoMountsUnder(t, filepath.Join(root, "run"))
}
