package scsi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/command"
	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/storage/crypt"
	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/mount"
)

// Supported file systems.
const (
	Ext4 = "ext4"
	XFS  = "xfs"
)

const (
	detectRetryDelay = 500 * time.Millisecond
	dirMode          = 0o700
)

// Config is one MappedVirtualDisk request.
type Config struct {
	MountPath        string
	Controller       uint8
	Lun              uint8
	Partition        uint64
	ReadOnly         bool
	Encrypted        bool
	Options          []string
	BlockDev         bool
	EnsureFilesystem bool
	Filesystem       string
}

// Disks mounts SCSI disks.
type Disks struct {
	Lookup Lookup
	Mapper *devicemapper.Mapper
	// LookupTimeout bounds the wait for the device to appear (0: only the
	// caller's context bounds it).
	LookupTimeout time.Duration
	// Runner runs mkfs (command.Plain when nil; the gcs passes its reaper).
	Runner command.Runner
	// Log receives a line per disk mounted, formatted or unmounted; nil
	// discards them.
	Log *logrus.Entry
}

// Mount makes the disk of cfg available at cfg.MountPath: as a symlink to
// the device (BlockDev) or as a mounted file system, optionally over an
// ephemeral dm-crypt mapping and formatted first (EnsureFilesystem). Waits
// are bounded by ctx. On failure everything created is undone.
func (d *Disks) Mount(ctx context.Context, cfg Config) (err error) {
	if cfg.Filesystem != "" && cfg.Filesystem != Ext4 && cfg.Filesystem != XFS {
		return fmt.Errorf("%q: %w", cfg.Filesystem, ErrUnsupportedFilesystem)
	}
	log := logging.Or(d.Log).WithFields(logrus.Fields{
		"controller": cfg.Controller, "lun": cfg.Lun, "partition": cfg.Partition, "path": cfg.MountPath,
	})
	lctx := ctx
	if d.LookupTimeout > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, d.LookupTimeout)
		defer cancel()
	}
	dev, err := d.Lookup.Device(lctx, cfg.Controller, cfg.Lun, cfg.Partition)
	if err != nil {
		return fmt.Errorf("find SCSI disk: %w", err)
	}
	if cfg.BlockDev {
		if err := os.MkdirAll(filepath.Dir(cfg.MountPath), dirMode); err != nil {
			return fmt.Errorf("create parent of %s: %w", cfg.MountPath, err)
		}
		if err := os.Symlink(dev, cfg.MountPath); err != nil {
			return fmt.Errorf("expose block device: %w", err)
		}
		log.WithField("device", dev).Info("SCSI block device exposed")
		return nil
	}

	if err := os.MkdirAll(cfg.MountPath, dirMode); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	defer func() {
		if err != nil {
			_ = mount.RemoveAllNoMounts(cfg.MountPath)
		}
	}()

	detected := ""
	if cfg.Encrypted {
		host, herr := d.Lookup.HostNumber(cfg.Controller)
		if herr != nil {
			return herr
		}
		name := crypt.Name(host, cfg.Lun, cfg.Partition)
		dev, err = crypt.Open(ctx, log, d.Mapper, dev, name)
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				_ = crypt.Close(ctx, d.Mapper, name)
			}
		}()
	} else {
		detected, err = detect(dev)
		if err != nil {
			return err
		}
		if detected == "" {
			select {
			case <-ctx.Done():
				return fmt.Errorf("detect file system: %w", ctx.Err())
			case <-time.After(detectRetryDelay):
			}
			if detected, err = detect(dev); err != nil {
				return err
			}
		}
	}
	fstype := cfg.Filesystem
	if fstype == "" {
		if detected == "" {
			return fmt.Errorf("%s: %w", dev, ErrUnknownFilesystem)
		}
		fstype = detected
	}
	if cfg.EnsureFilesystem && detected != fstype {
		if err := format(ctx, log, d.Runner, fstype, dev); err != nil {
			return err
		}
	}
	var flags uintptr
	data := ""
	if cfg.ReadOnly {
		flags |= unix.MS_RDONLY
		if fstype == Ext4 {
			data = "noload"
		}
	}
	if err := unix.Mount(dev, cfg.MountPath, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) at %s: %w", dev, fstype, cfg.MountPath, err)
	}
	defer func() {
		if err != nil {
			_ = mount.Unmount(ctx, cfg.MountPath)
		}
	}()
	if err := mount.ApplyPropagation(cfg.MountPath, cfg.Options); err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"device": dev, "fstype": fstype, "ro": cfg.ReadOnly}).Info("SCSI disk mounted")
	return nil
}

// Unmount undoes Mount: removes the BlockDev symlink, or unmounts and
// removes the mount point, and closes the dm-crypt mapping when Encrypted.
// The disk itself need not be present; a missing mount point is a success.
func (d *Disks) Unmount(ctx context.Context, cfg Config) error {
	if cfg.BlockDev {
		fi, err := os.Lstat(cfg.MountPath)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("remove block device link: %w", err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("remove block device link %s: not a symlink", cfg.MountPath)
		}
		if err := os.Remove(cfg.MountPath); err != nil {
			return fmt.Errorf("remove block device link: %w", err)
		}
		return nil
	}
	if err := mount.UnmountAndRemove(ctx, cfg.MountPath); err != nil {
		return fmt.Errorf("unmount SCSI disk: %w", err)
	}
	if cfg.Encrypted {
		host, err := d.Lookup.HostNumber(cfg.Controller)
		if err != nil {
			return err
		}
		if err := crypt.Close(ctx, d.Mapper, crypt.Name(host, cfg.Lun, cfg.Partition)); err != nil {
			return err
		}
	}
	logging.Or(d.Log).WithField("path", cfg.MountPath).Info("SCSI disk unmounted")
	return nil
}

// detect returns "ext4", "xfs" or "" for the file system on dev.
func detect(dev string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	buf := make([]byte, 2048)
	n, err := f.ReadAt(buf, 0)
	if n < len(buf) {
		if err != nil {
			return "", nil // too small to carry either superblock
		}
	}
	if binary.LittleEndian.Uint16(buf[1024+0x38:]) == 0xEF53 {
		return Ext4, nil
	}
	if string(buf[:4]) == "XFSB" {
		return XFS, nil
	}
	return "", nil
}

// format makes a new fstype file system on dev.
func format(ctx context.Context, log *logrus.Entry, run command.Runner, fstype, dev string) error {
	var cmd *exec.Cmd
	switch fstype {
	case Ext4:
		cmd = exec.Command("mkfs.ext4", "-q", "-F", dev)
	case XFS:
		cmd = exec.Command("mkfs.xfs", "-q", "-f", dev)
	default:
		return fmt.Errorf("format %q: %w", fstype, ErrUnsupportedFilesystem)
	}
	if out, err := command.CombinedOutput(ctx, run, cmd); err != nil {
		return fmt.Errorf("%s %s: %w: %s", cmd.Args[0], dev, err, out)
	}
	log.WithFields(logrus.Fields{"device": dev, "fstype": fstype}).Info("formatted")
	return nil
}
