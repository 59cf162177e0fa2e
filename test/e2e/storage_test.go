package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestSCSILayerDisk: a read-only layer disk hot-added on SCSI controller 1
// (Linux SCSI host 3), mounted the way shim v1 mounts layers, is the lower
// layer of a container's root file system; the host then tears everything
// down in its own order, ending with the guest-side unplug.
func TestSCSILayerDisk(t *testing.T) {
	s := newStorageEnv(t)
	img := busyboxLayer(t, map[string]string{"etc/layer-id": "scsi layer 7f3a\n"})
	del := s.scsiDisk(1, 3, 2, "sdc", storagetest.Loop(t, img, true))

	disk := &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Controller: 1, Lun: 2, ReadOnly: true, Options: []string{"ro"}}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, disk)
	m, ok := s.guestMountAt(disk.MountPath)
	if !ok {
		t.Fatalf("%s is not mounted in the guest", disk.MountPath)
	}
	if m.fstype != "ext4" || m.source != s.roots.DevPath("sdc") || !strings.HasPrefix(m.options, "ro") {
		t.Fatalf("layer mount %+v, want ext4 read-only from %s", m, s.roots.DevPath("sdc"))
	}

	s.layer = disk.MountPath
	id := newID(t)
	s.create(id, s.spec("sh", "-c", "cat /etc/layer-id && echo scratch >/written && cat /written"))
	if out, code := s.runInit(id); out != "scsi layer 7f3a\nscratch\n" || code != 0 {
		t.Fatalf("container printed %q, exit %d", out, code)
	}
	// The layer itself stayed read-only and untouched.
	if s.guestExists(filepath.Join(disk.MountPath, "written")) {
		t.Fatal("the container's write reached the read-only layer")
	}

	// Teardown in a v1 host's order.
	s.mustModify(prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
	if err := s.c.DeleteContainerState(ctxErr(t), id); err != nil {
		t.Fatalf("DeleteContainerState: %v", err)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: disk.MountPath, Controller: 1, Lun: 2, ReadOnly: true})
	if _, ok := s.guestMountAt(disk.MountPath); ok || s.guestExists(disk.MountPath) {
		t.Fatalf("%s still mounted or present after Remove", disk.MountPath)
	}
	if b, _ := os.ReadFile(del); len(b) != 0 {
		t.Fatalf("the disk was unplugged before SCSIDevice Remove: %q", b)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Controller: 1, Lun: 2})
	if b, err := os.ReadFile(del); err != nil || string(b) != "1\n" {
		t.Fatalf("sysfs delete file holds %q (%v), want \"1\\n\"", b, err)
	}
	// A second unplug of a device that is gone (no delete file) succeeds.
	if err := os.Remove(del); err != nil {
		t.Fatal(err)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Controller: 1, Lun: 2})
	s.assertGuestClean()
}

// TestSCSIScratchDisk: a blank disk becomes a shim v1 container sandbox:
// mounted with EnsureFilesystem at the bundle, formatted by the guest, used
// as the overlay upper layer. What the container wrote is on the disk.
func TestSCSIScratchDisk(t *testing.T) {
	s := newStorageEnv(t)
	img := busyboxLayer(t, map[string]string{"etc/layer-id": "base\n"})
	storagetest.BlockNode(t, s.roots.DevPath("pmem0"), storagetest.Loop(t, img, true))
	layer := &prot.LCOWMappedVPMemDevice{DeviceNumber: 0, MountPath: "/run/layers/p0"}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceVPMemDevice, layer)

	blank := storagetest.Loop(t, storagetest.SparseFile(t, "sandbox.vhdx", 128<<20), false)
	s.scsiDisk(0, 0, 1, "sdb", blank)
	id := newID(t)
	scratch := &prot.LCOWMappedVirtualDisk{MountPath: bundleOf(id), Lun: 1, EnsureFilesystem: true, Filesystem: "ext4"}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, scratch)
	if m, ok := s.guestMountAt(bundleOf(id)); !ok || m.fstype != "ext4" || !strings.HasPrefix(m.options, "rw") {
		t.Fatalf("scratch mount %+v (mounted %v), want read-write ext4", m, ok)
	}

	s.layer = layer.MountPath
	s.create(id, s.spec("sh", "-c", "cat /etc/layer-id && echo 'on the sandbox disk' >/root/data.txt"))
	if out, code := s.runInit(id); out != "base\n" || code != 0 {
		t.Fatalf("container printed %q, exit %d", out, code)
	}

	// The host unmounts the root and the sandbox, then unplugs the disk.
	s.mustModify(prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: bundleOf(id), Lun: 1})
	s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Lun: 1})
	if s.guestExists(bundleOf(id)) {
		t.Fatalf("%s left in the guest", bundleOf(id))
	}
	// Read the loop device, now mounted nowhere, without mounting it.
	upper := "/scratch/" + id + "/upper/root/data.txt"
	if got := debugfsCat(t, blank, upper); got != "on the sandbox disk\n" {
		t.Fatalf("%s on the disk holds %q", upper, got)
	}
	if err := s.c.DeleteContainerState(ctxErr(t), id); err != nil {
		t.Fatalf("DeleteContainerState: %v", err)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceVPMemDevice, layer)
	s.assertGuestClean()

	// A second Add of the same disk keeps the file system (and the data):
	// EnsureFilesystem formats only a disk without one.
	s.mustModify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, scratch)
	b, err := os.ReadFile(s.guestPath(filepath.Join(bundleOf(id), "scratch", id, "upper/root/data.txt")))
	if err != nil || string(b) != "on the sandbox disk\n" {
		t.Fatalf("after re-adding the disk: %q, %v", b, err)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: bundleOf(id), Lun: 1})
	s.assertGuestClean()
}

// TestVPMemLayer: single-mapped VPMem devices (one layer per /dev/pmem<N>)
// stacked as two layers of one container, top-most first.
func TestVPMemLayer(t *testing.T) {
	s := newStorageEnv(t)
	base := busyboxLayer(t, map[string]string{"etc/layer-id": "base\n", "etc/only-base": "b\n"})
	top := storagetest.LayerImage(t, "top.img", map[string]string{"etc/layer-id": "top\n"}, false)
	storagetest.BlockNode(t, s.roots.DevPath("pmem2"), storagetest.Loop(t, base, true))
	storagetest.BlockNode(t, s.roots.DevPath("pmem5"), storagetest.Loop(t, top, true))
	p2 := &prot.LCOWMappedVPMemDevice{DeviceNumber: 2, MountPath: "/run/layers/p2"}
	p5 := &prot.LCOWMappedVPMemDevice{DeviceNumber: 5, MountPath: "/run/layers/p5"}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceVPMemDevice, p2)
	s.mustModify(prot.RequestTypeAdd, prot.ResourceVPMemDevice, p5)
	for _, p := range []*prot.LCOWMappedVPMemDevice{p2, p5} {
		m, ok := s.guestMountAt(p.MountPath)
		want := s.roots.DevPath(fmt.Sprintf("pmem%d", p.DeviceNumber))
		if !ok || m.fstype != "ext4" || m.source != want || !strings.HasPrefix(m.options, "ro") {
			t.Fatalf("%s: mount %+v (mounted %v), want read-only ext4 from %s", p.MountPath, m, ok, want)
		}
	}

	id := newID(t)
	settings := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id),
		Layers: []prot.Layer{{Path: p5.MountPath}, {Path: p2.MountPath}}, ScratchPath: scratchOf(id)}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceCombinedLayers, settings)
	spec := s.spec("sh", "-c", "cat /etc/layer-id /etc/only-base")
	spec.Root.Path = rootfsOf(id)
	if err := s.c.CreateContainer(ctxErr(t), id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), spec)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.c.DeleteContainerState(ctxErr(t), id) })
	if err := s.c.Start(ctxErr(t), id); err != nil {
		t.Fatal(err)
	}
	if out, code := s.runInit(id); out != "top\nb\n" || code != 0 {
		t.Fatalf("container printed %q, exit %d", out, code)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
	if err := s.c.DeleteContainerState(ctxErr(t), id); err != nil {
		t.Fatal(err)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceVPMemDevice, p5)
	s.mustModify(prot.RequestTypeRemove, prot.ResourceVPMemDevice, p2)
	// Remove of a layer that is gone is tolerated.
	s.mustModify(prot.RequestTypeRemove, prot.ResourceVPMemDevice, p2)
	s.assertGuestClean()
}

// TestVPMemMultiMappedNeedsDeviceMapper: a packed layer needs dm-linear.
// On a kernel without device-mapper the Add fails promptly with an error
// that says so, and leaves nothing behind. (With device-mapper, the same
// path is exercised by the storage package tests inside the test VM.)
func TestVPMemMultiMappedNeedsDeviceMapper(t *testing.T) {
	if _, err := os.Stat("/dev/mapper/control"); err == nil {
		if b, _ := os.ReadFile("/proc/misc"); strings.Contains(string(b), "device-mapper") {
			t.Skip("this kernel has device-mapper; the dm-linear mapping is tested by internal/storage/pmem in the VM")
		}
	}
	s := newStorageEnv(t)
	img := storagetest.LayerImage(t, "packed.img", map[string]string{"id": "0"}, false)
	storagetest.BlockNode(t, s.roots.DevPath("pmem1"), storagetest.Loop(t, img, true))
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(st.Size()+4095) &^ 4095
	p := &prot.LCOWMappedVPMemDevice{DeviceNumber: 1, MountPath: fmt.Sprintf("/run/layers/p1-0-%d", size),
		MappingInfo: &prot.LCOWVPMemMappingInfo{DeviceOffsetInBytes: 0, DeviceSizeInBytes: size}}
	err = s.modify(prot.RequestTypeAdd, prot.ResourceVPMemDevice, p)
	if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), "device-mapper") {
		t.Fatalf("multi-mapped VPMem Add = %v, want E_FAIL naming device-mapper", err)
	}
	if s.guestExists(p.MountPath) || s.guestExists("/run/layers") && len(s.guestDir("/run/layers")) > 0 {
		t.Fatalf("a failed Add left %v in /run/layers", s.guestDir("/run/layers"))
	}
	if s.guestExists(filepath.Join(s.roots.Dev, "mapper", "control")) {
		t.Errorf("a device-mapper control node was created in the dev root")
	}
	// The host still sends its Remove; it succeeds.
	s.mustModify(prot.RequestTypeRemove, prot.ResourceVPMemDevice, p)
	s.assertGuestClean()
}

// guestDir lists a directory of the gcs's mount namespace.
func (s *storageEnv) guestDir(p string) []string {
	s.t.Helper()
	ents, _ := os.ReadDir(s.guestPath(p))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestSCSIMissingDevice: an Add for a LUN (or partition, or VPMem device)
// that never appears fails within the guest's bounded wait (the request
// context here is far longer), with an error naming what was awaited;
// nothing is created.
func TestSCSIMissingDevice(t *testing.T) {
	s := newStorageEnv(t)
	s.scsiDisk(2, 5, 0, "sda", storagetest.Loop(t, storagetest.SparseFile(t, "present.img", 1<<20), false))
	tests := []struct {
		name string
		disk prot.LCOWMappedVirtualDisk
		want string
	}{
		{"lun without device", prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m4", Controller: 2, Lun: 9, ReadOnly: true}, "5:0:0:9"},
		{"controller without host", prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m5", Controller: 3, Lun: 0}, "controller 3"},
		{"partition that never appears", prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m6", Controller: 2, Lun: 0, Partition: 2}, "partition sda2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.modify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, &tc.disk)
			if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add = %v, want E_FAIL naming %q", err, tc.want)
			}
			if s.guestExists(tc.disk.MountPath) {
				t.Fatalf("%s created by a failed Add", tc.disk.MountPath)
			}
		})
	}
	vp := &prot.LCOWMappedVPMemDevice{DeviceNumber: 9, MountPath: "/run/layers/p9"}
	err := s.modify(prot.RequestTypeAdd, prot.ResourceVPMemDevice, vp)
	if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), "pmem9") || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("VPMem Add of a missing device = %v, want E_FAIL, timed out, naming pmem9", err)
	}
	if s.guestExists(vp.MountPath) {
		t.Fatalf("%s created by a failed Add", vp.MountPath)
	}
	// The gcs stayed healthy: unplugging a device that is not there works.
	s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Controller: 2, Lun: 9})
	s.assertGuestClean()
}

// TestStorageRequestsRejected: settings that are out of range or that try
// to escape are refused with the HRESULT a host expects and a message that
// says why, before anything is created.
func TestStorageRequestsRejected(t *testing.T) {
	s := newStorageEnv(t)
	// A real disk at controller 0 LUN 0, so that only the rejected field
	// can be the reason for a failure.
	s.scsiDisk(0, 0, 0, "sda", storagetest.Loop(t, busyboxLayer(t, nil), true))
	storagetest.BlockNode(t, s.roots.DevPath("pmem0"), storagetest.Loop(t, storagetest.LayerImage(t, "l.img", map[string]string{"a": "b"}, false), true))
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	// victim is a directory outside the guest's /run that a Remove must
	// never delete.
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink inside the guest's /run that points out of it.
	if err := os.Symlink(outside, s.guestPath("/run/escape")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(s.guestPath("/run/escape")) })

	mvd := prot.ResourceMappedVirtualDisk
	disk := func(mp string, c, lun uint8, opts ...string) *prot.LCOWMappedVirtualDisk {
		return &prot.LCOWMappedVirtualDisk{MountPath: mp, Controller: c, Lun: lun, ReadOnly: true, Options: opts}
	}
	tests := []struct {
		name     string
		req      string
		resource string
		settings any
		hr       prot.HResult
		msg      string
		created  string // a guest path that must not exist afterwards
	}{
		{"relative mount path", prot.RequestTypeAdd, mvd, disk("run/mounts/scsi/m1", 0, 0), prot.HrVmcomputeInvalidJSON, "must be absolute", ""},
		{"dot-dot mount path", prot.RequestTypeAdd, mvd, disk("/run/mounts/../.."+outside+"/dotdot", 0, 0), prot.HrVmcomputeInvalidJSON, "must be absolute and clean", ""},
		{"mount path outside /run", prot.RequestTypeAdd, mvd, disk(outside+"/m1", 0, 0), prot.HrFail, "outside /run", ""},
		{"mount path is /run", prot.RequestTypeAdd, mvd, disk("/run", 0, 0), prot.HrFail, "outside /run", ""},
		{"mount path through a symlink", prot.RequestTypeAdd, mvd, disk("/run/escape/m1", 0, 0), prot.HrFail, "outside /run", ""},
		{"remove outside /run", prot.RequestTypeRemove, mvd, disk(victim, 0, 0), prot.HrFail, "outside /run", ""},
		{"remove through a symlink", prot.RequestTypeRemove, mvd, disk("/run/escape/victim", 0, 0), prot.HrFail, "outside /run", ""},
		{"controller 4", prot.RequestTypeAdd, mvd, disk("/run/mounts/scsi/m1", 4, 0), prot.HrFail, "controller 4", "/run/mounts/scsi/m1"},
		{"LUN 64", prot.RequestTypeAdd, mvd, disk("/run/mounts/scsi/m1", 0, 64), prot.HrFail, "LUN 64", "/run/mounts/scsi/m1"},
		{"LUN 300", prot.RequestTypeAdd, mvd, map[string]any{"MountPath": "/run/mounts/scsi/m1", "Lun": 300}, prot.HrVmcomputeInvalidJSON, "invalid Settings", "/run/mounts/scsi/m1"},
		{"option smuggling a second option", prot.RequestTypeAdd, mvd, disk("/run/mounts/scsi/m1", 0, 0, "ro,exec"), prot.HrVmcomputeInvalidJSON, "malformed", "/run/mounts/scsi/m1"},
		{"unsupported file system", prot.RequestTypeAdd, mvd, &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", EnsureFilesystem: true, Filesystem: "vfat"}, prot.HrFail, "unsupported file system", "/run/mounts/scsi/m1"},
		{"unplug controller 7", prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Controller: 7}, prot.HrFail, "controller 7", ""},
		{"SCSIDevice Add", prot.RequestTypeAdd, prot.ResourceSCSIDevice, &prot.SCSIDevice{}, prot.HrFail, "not supported", ""},
		{"vpmem outside /run", prot.RequestTypeAdd, prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{MountPath: outside + "/p0"}, prot.HrFail, "outside /run", ""},
		{"vpmem remove outside /run", prot.RequestTypeRemove, prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{MountPath: victim}, prot.HrFail, "outside /run", ""},
		{"vpmem unclean", prot.RequestTypeAdd, prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{MountPath: "/run/layers/./p0"}, prot.HrVmcomputeInvalidJSON, "clean", "/run/layers"},
		{"plan9 outside /run", prot.RequestTypeAdd, prot.ResourceMappedDirectory, &prot.LCOWMappedDirectory{MountPath: outside + "/share", Port: 564}, prot.HrFail, "outside /run", ""},
		{"plan9 remove outside /run", prot.RequestTypeRemove, prot.ResourceMappedDirectory, &prot.LCOWMappedDirectory{MountPath: victim}, prot.HrFail, "outside /run", ""},
		{"plan9 share name smuggling options", prot.RequestTypeAdd, prot.ResourceMappedDirectory, &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m9", Port: 564, ShareName: "0,trans=tcp"}, prot.HrFail, "share name", "/run/mounts/m9"},
		{"rootfs outside /run", prot.RequestTypeAdd, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: outside + "/rootfs", Layers: []prot.Layer{{Path: "/run/layers/p0"}}}, prot.HrFail, "outside /run", ""},
		{"scratch outside /run", prot.RequestTypeAdd, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs", ScratchPath: outside + "/scratch", Layers: []prot.Layer{{Path: "/run/layers/p0"}}}, prot.HrFail, "outside /run", "/run/gcs/c/x"},
		{"rootfs remove outside /run", prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: victim}, prot.HrFail, "outside /run", ""},
		{"layer smuggling overlay options", prot.RequestTypeAdd, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs", Layers: []prot.Layer{{Path: "/run/layers/p0,upperdir=/etc"}}}, prot.HrFail, "layer", "/run/gcs/c/x"},
		{"no Settings", prot.RequestTypeAdd, mvd, nil, prot.HrVmcomputeInvalidJSON, "Settings are missing", ""},
		{"Update of a disk", prot.RequestTypeUpdate, mvd, disk("/run/mounts/scsi/m1", 0, 0), prot.HrFail, "not supported", "/run/mounts/scsi/m1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.modify(tc.req, tc.resource, tc.settings)
			if got := hostclient.ResultOf(err); got != tc.hr || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%s %s = %v (%v), want %v with %q", tc.req, tc.resource, err, got, tc.hr, tc.msg)
			}
			if tc.created != "" && s.guestExists(tc.created) {
				t.Fatalf("%s exists in the guest after a refused request", tc.created)
			}
		})
	}
	// Nothing was created outside /run, and nothing there was removed.
	if ents, _ := os.ReadDir(outside); len(ents) != 2 {
		t.Fatalf("%s holds %v, want only keep and victim", outside, ents)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("victim directory: %v", err)
	}
	// Nothing was mounted and the disk is still usable.
	s.assertGuestClean()
	s.mustModify(prot.RequestTypeAdd, mvd, disk("/run/mounts/scsi/m1", 0, 0, "ro"))
	s.mustModify(prot.RequestTypeRemove, mvd, disk("/run/mounts/scsi/m1", 0, 0))
	s.assertGuestClean()
}

// TestMappedDirectoryWithout9p: with the host's Plan 9 server listening,
// the Add gets as far as the mount, which a kernel without 9p refuses. The
// error says so, the connection is closed and nothing is left behind.
//
// It covers only that refusal. A kernel with 9p (built in, loaded, or as a
// module that the mount loads) would instead send the version request of
// the 9p handshake on the connection and wait for the answer, which this
// test has no server to give: the test skips there, and if the detection
// below misses such a kernel it hangs up, which ends the mount's wait.
// No test mounts a working Plan 9 share yet.
func TestMappedDirectoryWithout9p(t *testing.T) {
	if where := kernel9p(); where != "" {
		t.Skipf("this kernel has 9p (%s): the refusal checked here cannot happen, and no test mounts a Plan 9 share against a 9p server yet", where)
	}
	s := newStorageEnv(t)
	l, err := s.g.Transport.Listen(564)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	ctx := ctxT(t, 60*time.Second)
	share := &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m3", Port: 564, ShareName: "7", ReadOnly: true}
	added := make(chan error, 1)
	go func() {
		added <- s.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceMappedDirectory, share)
	}()
	var conn net.Conn
	select {
	case c, ok := <-accepted:
		if !ok {
			t.Fatal("the guest never dialled the Plan 9 port")
		}
		conn = c
	case err := <-added:
		t.Fatalf("MappedDirectory Add returned %v without dialling the Plan 9 port", err)
	case <-ctx.Done():
		t.Fatal("no connection on the Plan 9 port")
	}
	defer conn.Close()
	// Without 9p the guest's mount fails at once and it closes its end:
	// EOF. A kernel that speaks 9p sends its version request instead.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, rerr := conn.Read(make([]byte, 64))
	spoke9p := n > 0
	if !errors.Is(rerr, io.EOF) {
		// Hang up: a mount waiting for the handshake fails now.
		conn.Close()
	}
	var addErr error
	select {
	case addErr = <-added:
	case <-ctx.Done():
		t.Fatal("MappedDirectory Add did not return after the Plan 9 connection closed")
	}
	if s.guestExists(share.MountPath) {
		t.Fatalf("%s left behind", share.MountPath)
	}
	if spoke9p {
		t.Skipf("this kernel loaded 9p when the share was mounted (it sent %d bytes of 9p handshake; Add then failed with %v): the refusal checked here cannot happen", n, addErr)
	}
	if !errors.Is(rerr, io.EOF) {
		t.Fatalf("read from the guest's 9p connection: %v, want EOF", rerr)
	}
	if hostclient.ResultOf(addErr) != prot.HrFail || !strings.Contains(addErr.Error(), "no 9p file system support") {
		t.Fatalf("MappedDirectory Add = %v, want E_FAIL saying the kernel has no 9p", addErr)
	}
	// The host's Remove of the share that never mounted succeeds.
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedDirectory, share)
	if d := s.guestDir("/run/mounts"); len(d) != 0 {
		t.Fatalf("left in /run/mounts: %v", d)
	}
	s.assertGuestClean()
}

// TestSCSIScratchDiskReleaseOrder: hcsshim's resource release sends
// DeleteContainerState while the root file system and the sandbox disk are
// still mounted, then removes the layers (overlay, scratch disk, layer
// disks). The guest removes the container's scratch and bundle content at
// DeleteContainerState (docs/lifecycle.md, "DeleteContainerState"); the
// bundle itself is the mount point of the sandbox disk and goes with the
// host's Remove that follows. Nothing is left behind.
func TestSCSIScratchDiskReleaseOrder(t *testing.T) {
	s := newStorageEnv(t)
	img := busyboxLayer(t, nil)
	s.scsiDisk(0, 0, 3, "sdd", storagetest.Loop(t, img, true))
	layer := &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m2", Lun: 3, ReadOnly: true, Options: []string{"ro"}}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, layer)
	blank := storagetest.Loop(t, storagetest.SparseFile(t, "sandbox.vhdx", 128<<20), false)
	s.scsiDisk(0, 0, 1, "sdb", blank)
	id := newID(t)
	scratch := &prot.LCOWMappedVirtualDisk{MountPath: bundleOf(id), Lun: 1, EnsureFilesystem: true, Filesystem: "ext4"}
	s.mustModify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, scratch)
	s.layer = layer.MountPath
	s.create(id, s.spec("sh", "-c", "echo x >/x"))
	if out, code := s.runInit(id); out != "" || code != 0 {
		t.Fatalf("container printed %q, exit %d", out, code)
	}
	// The bundle is the sandbox disk's mount point: removing the bundle
	// stops at it (the reference guest reports EBUSY here; the gcs leaves
	// the mount point to the disk's own Remove and succeeds).
	if err := s.c.DeleteContainerState(ctxErr(t), id); err != nil {
		t.Fatalf("DeleteContainerState with the sandbox disk mounted at the bundle: %v", err)
	}
	if _, ok := s.guestMountAt(rootfsOf(id)); ok || s.guestExists(scratchOf(id)) {
		t.Fatalf("DeleteContainerState left the root file system mounted (%v) or the scratch on the disk", ok)
	}
	if _, ok := s.guestMountAt(bundleOf(id)); !ok {
		t.Fatal("DeleteContainerState unmounted the host's sandbox disk")
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: bundleOf(id), Lun: 1})
	s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Lun: 1})
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: layer.MountPath, Lun: 3, ReadOnly: true})
	s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Lun: 3})
	s.assertGuestClean()
}

// TestSCSIDiskVariants: the other ways hosts map SCSI disks: a partition,
// a raw block device (BlockDev, for blockdev:// OCI mounts), an xfs
// sandbox (the encrypted-scratch file system, here without encryption) and
// a propagation option.
func TestSCSIDiskVariants(t *testing.T) {
	s := newStorageEnv(t)

	// Partition 1 of an MBR disk. The kernel's partition scan is not
	// needed: a second loop device holds exactly the partition's range,
	// as /dev/sde1 would.
	mbr := storagetest.MBRImage(t, "part.vhdx", 64<<20)
	part := storagetest.LoopRange(t, mbr, 1<<20, 63<<20)
	storagetest.Mkfs(t, "ext4", part)
	s.scsiDisk(0, 0, 5, "sdf", storagetest.Loop(t, storagetest.SparseFile(t, "raw.img", 1<<20), false))
	s.scsiDisk(0, 0, 6, "sdg", storagetest.Loop(t, storagetest.SparseFile(t, "xfs.vhdx", 512<<20), false))
	s.scsiDisk(0, 0, 7, "sdh", storagetest.Loop(t, busyboxLayer(t, nil), true))
	storagetest.AddSCSIDisk(t, s.roots, 0, 4, "sde", storagetest.Loop(t, mbr, true), map[int]string{1: part})

	tests := []struct {
		name  string
		disk  prot.LCOWMappedVirtualDisk
		check func(t *testing.T, mp string)
	}{
		{"partition", prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/0_4_1", Lun: 4, Partition: 1, ReadOnly: true, Options: []string{"ro"}}, func(t *testing.T, mp string) {
			if m, ok := s.guestMountAt(mp); !ok || m.source != s.roots.DevPath("sde1") || m.fstype != "ext4" {
				t.Fatalf("mount %+v (mounted %v), want ext4 from %s", m, ok, s.roots.DevPath("sde1"))
			}
		}},
		{"block device", prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m5", Lun: 5, BlockDev: true}, func(t *testing.T, mp string) {
			if dst, err := os.Readlink(s.guestPath(mp)); err != nil || dst != s.roots.DevPath("sdf") {
				t.Fatalf("%s links to %q (%v), want %s", mp, dst, err, s.roots.DevPath("sdf"))
			}
			if _, ok := s.guestMountAt(mp); ok {
				t.Fatal("a BlockDev disk was mounted")
			}
		}},
		{"xfs sandbox", prot.LCOWMappedVirtualDisk{MountPath: "/run/gcs/c/xfs", Lun: 6, EnsureFilesystem: true, Filesystem: "xfs"}, func(t *testing.T, mp string) {
			if m, ok := s.guestMountAt(mp); !ok || m.fstype != "xfs" || !strings.HasPrefix(m.options, "rw") {
				t.Fatalf("mount %+v (mounted %v), want read-write xfs", m, ok)
			}
		}},
		{"shared propagation", prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m7", Lun: 7, ReadOnly: true, Options: []string{"ro", "nosuid", "rshared"}}, func(t *testing.T, mp string) {
			m, ok := s.guestMountAt(mp)
			if !ok || !strings.HasPrefix(m.options, "ro") || len(m.optional) == 0 || !strings.HasPrefix(m.optional[0], "shared:") {
				t.Fatalf("mount %+v (mounted %v), want read-only and shared", m, ok)
			}
			// Options other than propagation are not applied.
			if strings.Contains(m.options, "nosuid") {
				t.Fatalf("mount options %s include nosuid", m.options)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.mustModify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, &tc.disk)
			tc.check(t, tc.disk.MountPath)
			s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &tc.disk)
			if s.guestExists(tc.disk.MountPath) {
				t.Fatalf("%s left after Remove", tc.disk.MountPath)
			}
			s.mustModify(prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Lun: tc.disk.Lun})
		})
	}
	s.assertGuestClean()
}

// TestStorageConcurrentRequests: a host adds and removes many disks and
// VPMem layers at once; each request gets its own answer and the end state
// is clean.
func TestStorageConcurrentRequests(t *testing.T) {
	s := newStorageEnv(t)
	img := storagetest.LayerImage(t, "shared.img", map[string]string{"id": "x"}, false)
	const n = 8
	for i := 0; i < n; i++ {
		s.scsiDisk(0, 0, uint8(i), fmt.Sprintf("sd%c", 'a'+i), storagetest.Loop(t, img, true))
		storagetest.BlockNode(t, s.roots.DevPath(fmt.Sprintf("pmem%d", i)), storagetest.Loop(t, img, true))
	}
	disk := func(i int) *prot.LCOWMappedVirtualDisk {
		return &prot.LCOWMappedVirtualDisk{MountPath: fmt.Sprintf("/run/mounts/scsi/m%d", i), Lun: uint8(i), ReadOnly: true, Options: []string{"ro"}}
	}
	vpmem := func(i int) *prot.LCOWMappedVPMemDevice {
		return &prot.LCOWMappedVPMemDevice{DeviceNumber: uint32(i), MountPath: fmt.Sprintf("/run/layers/p%d", i)}
	}
	all := func(req string) {
		t.Helper()
		errs := make(chan error, 2*n)
		for i := 0; i < n; i++ {
			go func() { errs <- s.modify(req, prot.ResourceMappedVirtualDisk, disk(i)) }()
			go func() { errs <- s.modify(req, prot.ResourceVPMemDevice, vpmem(i)) }()
		}
		for i := 0; i < 2*n; i++ {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", req, err)
			}
		}
	}
	all(prot.RequestTypeAdd)
	for i := 0; i < n; i++ {
		for _, p := range []string{disk(i).MountPath, vpmem(i).MountPath} {
			if b, err := os.ReadFile(s.guestPath(p + "/id")); err != nil || string(b) != "x" {
				t.Fatalf("%s/id: %q, %v", p, b, err)
			}
		}
	}
	all(prot.RequestTypeRemove)
	s.assertGuestClean()
}

// TestStorageAddFailuresLeaveNothing: devices that are there but cannot be
// mounted (no file system, read-only device to format) fail with the
// reason, and the mount point made for them is gone again.
func TestStorageAddFailuresLeaveNothing(t *testing.T) {
	s := newStorageEnv(t)
	blank := storagetest.SparseFile(t, "blank.img", 16<<20)
	s.scsiDisk(0, 0, 1, "sdb", storagetest.Loop(t, blank, false))
	s.scsiDisk(0, 0, 2, "sdc", storagetest.Loop(t, blank, true))
	storagetest.BlockNode(t, s.roots.DevPath("pmem4"), storagetest.Loop(t, blank, true))
	tests := []struct {
		name     string
		resource string
		settings any
		mp, msg  string
	}{
		{"disk without a file system", prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Lun: 1, ReadOnly: true}, "/run/mounts/scsi/m1", "unknown file system"},
		{"format of a read-only device", prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: "/run/gcs/c/ro", Lun: 2, EnsureFilesystem: true, Filesystem: "ext4"}, "/run/gcs/c/ro", "mkfs.ext4"},
		{"vpmem without ext4", prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{DeviceNumber: 4, MountPath: "/run/layers/p4"}, "/run/layers/p4", "mount " + s.roots.DevPath("pmem4")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.modify(prot.RequestTypeAdd, tc.resource, tc.settings)
			if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Add = %v, want E_FAIL with %q", err, tc.msg)
			}
			if s.guestExists(tc.mp) {
				t.Fatalf("%s left by a failed Add", tc.mp)
			}
		})
	}
	s.assertGuestClean()
}

// kernel9p says where this kernel's 9p comes from ("" if it has none):
// registered, built in, or a module a mount would load.
func kernel9p() string {
	if b, _ := os.ReadFile("/proc/filesystems"); strings.Contains(string(b), "\t9p\n") {
		return "registered in /proc/filesystems"
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return ""
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	if b, _ := os.ReadFile(filepath.Join(dir, "modules.builtin")); strings.Contains(string(b), "/9p.ko") {
		return "built in"
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "modules.dep")); strings.Contains(string(b), "/fs/9p/9p.ko") {
		return "a module in " + dir
	}
	return ""
}
