package storagetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/devices"
)

// FakeRoots creates empty sysfs and /dev roots under t.TempDir(). The sysfs
// tree is the only fake: device nodes placed in it are real block nodes of
// real (loop) devices.
func FakeRoots(t testing.TB) devices.Roots {
	t.Helper()
	base := t.TempDir()
	r := devices.Roots{Sys: filepath.Join(base, "sys"), Dev: filepath.Join(base, "dev")}
	for _, d := range []string{r.Sys, r.Dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// AddSCSIHost creates bus/vmbus/devices/<guid>/host<host>.
func AddSCSIHost(t testing.TB, r devices.Roots, guid string, host int) {
	t.Helper()
	mkdir(t, r.SysPath("bus", "vmbus", "devices", guid, fmt.Sprintf("host%d", host)))
}

// AddSCSIDisk creates the sysfs entries of <host>:0:0:<lun> with block
// device disk, its delete file, and the node <dev>/<disk> aliasing the real
// block device realDev. parts maps partition numbers to real devices.
func AddSCSIDisk(t testing.TB, r devices.Roots, host int, lun uint8, disk, realDev string, parts map[int]string) {
	t.Helper()
	addr := r.SysPath("bus", "scsi", "devices", fmt.Sprintf("%d:0:0:%d", host, lun))
	mkdir(t, filepath.Join(addr, "block", disk))
	if err := os.WriteFile(filepath.Join(addr, "delete"), nil, 0o200); err != nil {
		t.Fatal(err)
	}
	BlockNode(t, r.DevPath(disk), realDev)
	for n, d := range parts {
		name := fmt.Sprintf("%s%d", disk, n)
		mkdir(t, filepath.Join(addr, "block", disk, name))
		BlockNode(t, r.DevPath(name), d)
	}
}

// BlockNode makes path a block device node with the device number of the
// real device realDev.
func BlockNode(t testing.TB, path, realDev string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(realDev, &st); err != nil {
		t.Fatalf("stat %s: %v", realDev, err)
	}
	if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(st.Rdev)); err != nil {
		t.Fatalf("mknod %s: %v", path, err)
	}
}

func mkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// MBRImage creates a file of size bytes with an MBR partition table holding
// one Linux partition from 1 MiB to the end.
func MBRImage(t testing.TB, name string, size int64) string {
	t.Helper()
	p := SparseFile(t, name, size)
	mbr := make([]byte, 512)
	e := mbr[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(size/512-2048))
	mbr[510], mbr[511] = 0x55, 0xAA
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitNode waits up to a few seconds for a device node (e.g. a partition
// of a loop device) to be openable.
func WaitNode(t testing.TB, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := devices.WaitOpen(ctx, path); err != nil {
		t.Fatalf("device node %s: %v", path, err)
	}
}
