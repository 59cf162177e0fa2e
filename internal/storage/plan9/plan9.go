package plan9

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/mount"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

const (
	msize   = 65536
	sockBuf = 65536
	dirMode = 0o700
	fsType  = "9p"
)

// Config is one MappedDirectory request.
type Config struct {
	MountPath string
	Port      uint32
	ShareName string
	ReadOnly  bool
}

// Options returns the 9p mount data for descriptor fd.
func Options(fd int, share string, ro bool) string {
	opts := fmt.Sprintf("trans=fd,rfdno=%d,wfdno=%d,msize=%d", fd, fd, msize)
	if ro {
		opts += ",noload"
	}
	if share != "" {
		opts += ",aname=" + share
	}
	return opts
}

// Mount dials the host's 9p server on cfg.Port and mounts the share at
// cfg.MountPath. On failure the mount point is removed again.
func Mount(ctx context.Context, log *logrus.Entry, t transport.Transport, cfg Config) (err error) {
	if strings.ContainsAny(cfg.ShareName, ",\x00") {
		return fmt.Errorf("%q: %w", cfg.ShareName, ErrBadShareName)
	}
	if err := os.MkdirAll(cfg.MountPath, dirMode); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	defer func() {
		if err != nil {
			_ = mount.RemoveAllNoMounts(cfg.MountPath)
		}
	}()
	conn, err := t.Dial(ctx, cfg.Port)
	if err != nil {
		return fmt.Errorf("dial Plan 9 server on port %d: %w", cfg.Port, err)
	}
	defer conn.Close()
	f, err := connFile(conn)
	if err != nil {
		return err
	}
	// The kernel takes its own reference; ours is closed when we return.
	defer f.Close()
	fd := int(f.Fd())
	for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, sockBuf); err != nil {
			return fmt.Errorf("set socket buffer: %w", err)
		}
	}
	var flags uintptr
	if cfg.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	data := Options(fd, cfg.ShareName, cfg.ReadOnly)
	if err := unix.Mount(cfg.MountPath, cfg.MountPath, fsType, flags, data); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("mount 9p share %q at %s: %w (%w)", cfg.ShareName, cfg.MountPath, err, ErrNo9p)
		}
		return fmt.Errorf("mount 9p share %q at %s: %w", cfg.ShareName, cfg.MountPath, err)
	}
	log.WithFields(logrus.Fields{"path": cfg.MountPath, "port": cfg.Port, "share": cfg.ShareName, "ro": cfg.ReadOnly}).Info("Plan 9 share mounted")
	return nil
}

// Unmount unmounts and removes the mount point (a missing one is a success).
func Unmount(ctx context.Context, mountPath string) error {
	if err := mount.UnmountAndRemove(ctx, mountPath); err != nil {
		return fmt.Errorf("unmount Plan 9 share: %w", err)
	}
	return nil
}

// connFile returns a duplicate descriptor of conn as a blocking *os.File.
func connFile(conn any) (*os.File, error) {
	if fc, ok := conn.(interface{ File() (*os.File, error) }); ok {
		f, err := fc.File()
		if err != nil {
			return nil, fmt.Errorf("connection descriptor: %w", err)
		}
		return f, nil
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T: %w", conn, ErrNoFD)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("connection descriptor: %w", err)
	}
	var dup int
	var derr error
	if cerr := raw.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, fmt.Errorf("connection descriptor: %w", cerr)
	}
	if derr != nil {
		return nil, fmt.Errorf("dup connection descriptor: %w", derr)
	}
	if err := unix.SetNonblock(dup, false); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("connection descriptor: %w", err)
	}
	return os.NewFile(uintptr(dup), "9p"), nil
}
