package scsi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
)

const host = 7 // Linux SCSI host number of controller 0 in the fake sysfs

// setup builds a fake sysfs with controller 0 -> host7 and returns Disks.
func setup(t *testing.T) (*scsi.Disks, devices.Roots) {
	t.Helper()
	storagetest.RequireRoot(t)
	roots := storagetest.FakeRoots(t)
	guid, err := scsi.ControllerGUID(0)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.AddSCSIHost(t, roots, guid, host)
	return &scsi.Disks{Lookup: scsi.Lookup{Roots: roots}, Mapper: devicemapper.New(roots), LookupTimeout: 2 * time.Second}, roots
}

// disk attaches a loop device over a new image (formatted with fs unless
// empty) and plugs it at lun.
func disk(t *testing.T, roots devices.Roots, lun uint8, fs string) string {
	t.Helper()
	size := int64(64 << 20)
	if fs == "xfs" || fs == "" {
		size = 320 << 20 // mkfs.xfs needs more than 300 MB
	}
	img := storagetest.SparseFile(t, "disk.img", size)
	if fs != "" {
		storagetest.Mkfs(t, fs, img)
	}
	dev := storagetest.Loop(t, img, false)
	storagetest.AddSCSIDisk(t, roots, host, lun, "sd"+string(rune('a'+lun)), dev, nil)
	return dev
}

func TestMountUnmount(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		fs       string // file system already on the disk
		cfg      scsi.Config
		wantType string
		wantRO   bool
	}{
		{name: "read-only ext4 layer", fs: "ext4", cfg: scsi.Config{ReadOnly: true, Options: []string{"ro"}}, wantType: "ext4", wantRO: true},
		{name: "scratch formatted ext4", cfg: scsi.Config{EnsureFilesystem: true, Filesystem: "ext4"}, wantType: "ext4"},
		{name: "scratch formatted xfs", cfg: scsi.Config{EnsureFilesystem: true, Filesystem: "xfs"}, wantType: "xfs"},
		{name: "existing xfs detected", fs: "xfs", cfg: scsi.Config{}, wantType: "xfs"},
		{name: "ext4 kept, not reformatted", fs: "ext4", cfg: scsi.Config{EnsureFilesystem: true, Filesystem: "ext4"}, wantType: "ext4"},
		{name: "propagation honoured", fs: "ext4", cfg: scsi.Config{Options: []string{"rshared", "nosuid"}}, wantType: "ext4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, roots := setup(t)
			disk(t, roots, 3, tc.fs)
			root := storagetest.Tmpfs(t)
			cfg := tc.cfg
			cfg.Lun = 3
			cfg.MountPath = filepath.Join(root, "run", "mounts", "scsi", "m1")
			if tc.fs != "" && !tc.wantRO {
				// Mark the existing file system to prove it is not reformatted.
				prime(t, roots.DevPath("sdd"), tc.fs)
			}
			if err := d.Mount(ctx, cfg); err != nil {
				t.Fatalf("Mount: %v", err)
			}
			t.Cleanup(func() { _ = d.Unmount(ctx, cfg) })
			fstype, opts, optional := mountEntry(t, cfg.MountPath)
			if fstype != tc.wantType {
				t.Errorf("fstype = %s, want %s", fstype, tc.wantType)
			}
			if got := strings.HasPrefix(opts, "ro"); got != tc.wantRO {
				t.Errorf("mount options %q, read-only want %v", opts, tc.wantRO)
			}
			if strings.Contains(strings.Join(cfg.Options, ","), "rshared") != strings.Contains(optional, "shared:") {
				t.Errorf("propagation %q for options %v", optional, cfg.Options)
			}
			err := os.WriteFile(filepath.Join(cfg.MountPath, "f"), []byte("x"), 0o644)
			if tc.wantRO && !errors.Is(err, unix.EROFS) {
				t.Errorf("write on read-only mount: %v", err)
			}
			if !tc.wantRO && err != nil {
				t.Errorf("write: %v", err)
			}
			if tc.fs != "" && !tc.wantRO {
				if _, err := os.Stat(filepath.Join(cfg.MountPath, "marker")); err != nil {
					t.Errorf("existing file system was not kept: %v", err)
				}
			}
			if err := d.Unmount(ctx, cfg); err != nil {
				t.Fatalf("Unmount: %v", err)
			}
			if _, err := os.Stat(cfg.MountPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount point not removed: %v", err)
			}
			storagetest.NoMountsUnder(t, filepath.Join(root, "run"))
			// A second Remove of the same path succeeds.
			if err := d.Unmount(ctx, cfg); err != nil {
				t.Errorf("repeated Unmount: %v", err)
			}
		})
	}
}

// prime writes a marker file onto the file system on dev.
func prime(t *testing.T, dev, fs string) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, fs, 0, ""); err != nil {
		t.Fatal(err)
	}
	werr := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644)
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	if werr != nil {
		t.Fatal(werr)
	}
}

// mountEntry returns the fs type, per-mount options and optional fields of
// the mount at p.
func mountEntry(t *testing.T, p string) (fstype, opts, optional string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[4] != p {
			continue
		}
		i := 6
		var opt []string
		for ; f[i] != "-"; i++ {
			opt = append(opt, f[i])
		}
		fstype, opts, optional = f[i+1], f[5], strings.Join(opt, " ")
	}
	if fstype == "" {
		t.Fatalf("%s not mounted", p)
	}
	return fstype, opts, optional
}

func TestPartition(t *testing.T) {
	ctx := context.Background()
	d, roots := setup(t)
	img := storagetest.MBRImage(t, "part.img", 64<<20)
	loop := storagetest.Loop(t, img, false)
	// The partition as the kernel would expose it: bytes 1 MiB..end.
	part := storagetest.LoopRange(t, img, 1<<20, 63<<20)
	storagetest.Mkfs(t, "ext4", part)
	storagetest.AddSCSIDisk(t, roots, host, 2, "sdc", loop, map[int]string{1: part})
	root := storagetest.Tmpfs(t)
	cfg := scsi.Config{Lun: 2, Partition: 1, MountPath: filepath.Join(root, "p")}
	if err := d.Mount(ctx, cfg); err != nil {
		t.Fatalf("Mount partition: %v", err)
	}
	t.Cleanup(func() { _ = d.Unmount(ctx, cfg) })
	if fstype, _, _ := mountEntry(t, cfg.MountPath); fstype != "ext4" {
		t.Errorf("fstype %s", fstype)
	}
	if err := d.Unmount(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Partition 2 does not exist: a bounded wait, then a clear error.
	cfg.Partition = 2
	d.LookupTimeout = 100 * time.Millisecond
	if err := d.Mount(ctx, cfg); !errors.Is(err, devices.ErrTimeout) || !strings.Contains(err.Error(), "sdc2") {
		t.Errorf("Mount of a missing partition = %v", err)
	}
}

func TestBlockDev(t *testing.T) {
	ctx := context.Background()
	d, roots := setup(t)
	disk(t, roots, 4, "")
	root := storagetest.Tmpfs(t)
	cfg := scsi.Config{Lun: 4, BlockDev: true, MountPath: filepath.Join(root, "dev", "blk")}
	if err := d.Mount(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(cfg.MountPath)
	if err != nil || target != roots.DevPath("sde") {
		t.Fatalf("symlink -> %q (%v), want %s", target, err, roots.DevPath("sde"))
	}
	if err := d.Unmount(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(cfg.MountPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink not removed")
	}
}

func TestLookupErrors(t *testing.T) {
	ctx := context.Background()
	d, roots := setup(t)
	disk(t, roots, 1, "")
	root := storagetest.Tmpfs(t)
	d.LookupTimeout = 100 * time.Millisecond
	tests := []struct {
		name    string
		cfg     scsi.Config
		want    error
		message string
	}{
		{"missing LUN times out", scsi.Config{Lun: 9}, devices.ErrTimeout, "SCSI 7:0:0:9"},
		{"controller 4 rejected", scsi.Config{Controller: 4}, scsi.ErrBadController, "controller 4"},
		{"controller without host", scsi.Config{Controller: 2}, scsi.ErrNoHost, "b5d2d8d4-3a75-51bf-945b-3444dc6b8579"},
		{"unknown file system", scsi.Config{Lun: 1}, scsi.ErrUnknownFilesystem, "unknown file system"},
		{"unsupported file system", scsi.Config{Lun: 1, Filesystem: "btrfs"}, scsi.ErrUnsupportedFilesystem, "btrfs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.MountPath = filepath.Join(root, "m")
			err := d.Mount(ctx, cfg)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Mount = %v, want %v mentioning %q", err, tc.want, tc.message)
			}
			if _, err := os.Stat(cfg.MountPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount point left behind after failure")
			}
		})
	}
}

func TestUnplug(t *testing.T) {
	ctx := context.Background()
	d, roots := setup(t)
	disk(t, roots, 5, "")
	if err := d.Lookup.Unplug(ctx, 0, 5); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(roots.SysPath("bus", "scsi", "devices", "7:0:0:5", "delete"))
	if err != nil || string(got) != "1\n" {
		t.Errorf("delete file = %q, %v", got, err)
	}
	// An already removed device is a success.
	if err := d.Lookup.Unplug(ctx, 0, 6); err != nil {
		t.Errorf("Unplug of absent device: %v", err)
	}
	if err := d.Lookup.Unplug(ctx, 4, 0); !errors.Is(err, scsi.ErrBadController) {
		t.Errorf("Unplug controller 4 = %v", err)
	}
}

func TestControllerGUIDs(t *testing.T) {
	want := []string{
		"df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
		"0110f83b-de10-5172-a266-78bca56bf50a",
		"b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
		"305891a9-b251-5dfe-91a2-c25d9212275b",
	}
	for i, w := range want {
		if g, err := scsi.ControllerGUID(uint8(i)); err != nil || g != w {
			t.Errorf("controller %d = %s, %v", i, g, err)
		}
	}
}
