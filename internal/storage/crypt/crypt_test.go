package crypt_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/storage/crypt"
	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
)

func TestEncryptedScratchUnreadableAsPlain(t *testing.T) {
	storagetest.RequireDeviceMapper(t, "dm-crypt-scsi-")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img := storagetest.SparseFile(t, "scratch.img", 64<<20)
	loop := storagetest.Loop(t, img, false)
	m := devicemapper.New(storagetest.FakeRoots(t))
	name := crypt.Name(0, 1, 0)
	dev, err := crypt.Open(ctx, logging.Discard(), m, loop, name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = crypt.Close(ctx, m, name) })
	storagetest.Mkfs(t, "ext4", dev)
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("top-secret-marker "), 1000)
	werr := os.WriteFile(filepath.Join(dir, "s"), secret, 0o644)
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	if werr != nil {
		t.Fatal(werr)
	}
	if err := crypt.Close(ctx, m, name); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("top-secret-marker")) {
		t.Errorf("plaintext found on the backing device")
	}
	if out, err := exec.Command("dumpe2fs", "-h", loop).CombinedOutput(); err == nil {
		t.Errorf("backing device reads as plain ext4:\n%s", out)
	}
}
