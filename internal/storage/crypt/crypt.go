package crypt

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
)

const keyBytes = 64 // aes-xts with two 256-bit keys

// Name returns the mapping name for a SCSI disk (translated controller
// number, LUN, partition).
func Name(controller int, lun uint8, partition uint64) string {
	return fmt.Sprintf("dm-crypt-scsi-contr%d-lun%d-p%d", controller, lun, partition)
}

// Open maps source through dm-crypt under name with a new random key and
// returns the mapped device path. The first 4096 bytes of the mapping are
// zeroed so that file system probes read defined data.
func Open(ctx context.Context, log *logrus.Entry, m *devicemapper.Mapper, source, name string) (_ string, err error) {
	size, err := deviceSize(source)
	if err != nil {
		return "", err
	}
	key := make([]byte, keyBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	defer clear(key)
	tgt, err := devicemapper.CryptTarget(source, key, size/devicemapper.SectorSize)
	if err != nil {
		return "", err
	}
	path, err := m.Create(ctx, name, false, []devicemapper.Target{tgt})
	if err != nil {
		return "", fmt.Errorf("open dm-crypt on %s: %w", source, err)
	}
	defer func() {
		if err != nil {
			_ = m.Remove(ctx, name)
		}
	}()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		return "", fmt.Errorf("zero start of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", path, err)
	}
	log.WithFields(logrus.Fields{"source": source, "name": name}).Info("dm-crypt mapping opened")
	return path, nil
}

// Close removes the mapping; its data becomes unreadable for good.
func Close(ctx context.Context, m *devicemapper.Mapper, name string) error {
	if err := m.Remove(ctx, name); err != nil {
		return fmt.Errorf("close dm-crypt %s: %w", name, err)
	}
	return nil
}

// deviceSize returns the size in bytes of a block device or regular file.
func deviceSize(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode().IsRegular() {
		return uint64(st.Size()), nil
	}
	var size uint64
	if err := ioctlGetSize(int(f.Fd()), &size); err != nil {
		return 0, fmt.Errorf("BLKGETSIZE64 %s: %w", path, err)
	}
	return size, nil
}

func ioctlGetSize(fd int, size *uint64) error {
	v, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		return err
	}
	*size = v
	return nil
}
