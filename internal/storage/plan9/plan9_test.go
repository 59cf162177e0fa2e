package plan9_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/storage/plan9"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		share string
		ro    bool
		want  string
	}{
		{"", false, "trans=fd,rfdno=5,wfdno=5,msize=65536"},
		{"7", true, "trans=fd,rfdno=5,wfdno=5,msize=65536,noload,aname=7"},
		{"0", false, "trans=fd,rfdno=5,wfdno=5,msize=65536,aname=0"},
	}
	for _, tc := range tests {
		if got := plan9.Options(5, tc.share, tc.ro); got != tc.want {
			t.Errorf("Options(%q, %v) = %q, want %q", tc.share, tc.ro, got, tc.want)
		}
	}
}

func TestRejectsOptionInjection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	err := plan9.Mount(context.Background(), logging.Discard(), transport.NewUnix(filepath.Join(t.TempDir(), "p")), plan9.Config{MountPath: dir, Port: 564, ShareName: "0,trans=tcp"})
	if !errors.Is(err, plan9.ErrBadShareName) {
		t.Fatalf("Mount = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point created for a rejected request")
	}
}

// TestMountDialsHost runs Mount against a host end listening on the unix
// transport. The test has no 9p server, so the mount cannot succeed; it
// checks that the host port is dialled, that the kernel is handed the
// descriptor, and that a failure leaves nothing behind.
func TestMountDialsHost(t *testing.T) {
	storagetest.RequireRoot(t)
	tr := transport.NewUnix(filepath.Join(t.TempDir(), "host"))
	l, err := tr.Listen(564)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{})
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		close(accepted)
		c.Close() // no 9p server: hang up, so a kernel with 9p fails the version handshake
	}()
	root := storagetest.Tmpfs(t)
	dir := filepath.Join(root, "mounts", "m0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = plan9.Mount(ctx, logging.Discard(), tr, plan9.Config{MountPath: dir, Port: 564, ShareName: "0", ReadOnly: true})
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("host port was never dialled")
	}
	if err == nil {
		_ = plan9.Unmount(ctx, dir)
		t.Fatal("mount succeeded without a 9p server")
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("mount point left after failure")
	}
	storagetest.NoMountsUnder(t, filepath.Join(root, "mounts"))
	fs, rerr := os.ReadFile("/proc/filesystems")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(fs), "\t9p\n") {
		if !errors.Is(err, unix.ENODEV) {
			t.Errorf("without 9p in the kernel the mount must fail with ENODEV, got %v", err)
		}
		t.Skipf("kernel has no 9p file system (not in /proc/filesystems): checked dial, descriptor hand-off and cleanup up to mount(2), which failed with %v", err)
	}
	if !strings.Contains(err.Error(), "9p") {
		t.Errorf("error does not name the 9p mount: %v", err)
	}
}
