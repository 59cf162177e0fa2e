package pmem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/storage/mount"
	"github.com/opengcs/opengcs/internal/storage/verity"
)

const dirMode = 0o700

// Mapping locates one layer inside a multi-mapped device.
type Mapping struct {
	Offset uint64 // bytes
	Size   uint64 // bytes
}

// Config is one VPMemDevice request.
type Config struct {
	DeviceNumber uint32
	MountPath    string
	Mapping      *Mapping // nil: the whole device is the layer
	// Verity reads the dm-verity metadata appended to the layer and mounts
	// through a dm-verity device.
	Verity bool
}

// Devices mounts VPMem layers. It remembers the device-mapper devices it
// made per mount path so Unmount can remove them.
type Devices struct {
	Roots  devices.Roots
	Mapper *devicemapper.Mapper
	// Log receives a line per layer mounted; nil discards them.
	Log *logrus.Entry

	mu     sync.Mutex
	mapped map[string][]string // mount path -> dm names, creation order
}

// New returns Devices for the given roots.
func New(roots devices.Roots) *Devices {
	return &Devices{Roots: roots, Mapper: devicemapper.New(roots)}
}

// DevicePath returns /dev/pmem<n> under the /dev root.
func (d *Devices) DevicePath(n uint32) string { return d.Roots.DevPath(fmt.Sprintf("pmem%d", n)) }

// LinearName is the dm-linear device name of a packed layer.
func LinearName(n uint32, m Mapping) string {
	return fmt.Sprintf("dm-linear-pmem%d-%d-%d", n, m.Offset, m.Size)
}

// Mount mounts the layer of cfg read-only at cfg.MountPath. On failure the
// directory and any device-mapper devices are removed again.
func (d *Devices) Mount(ctx context.Context, cfg Config) (err error) {
	dev := d.DevicePath(cfg.DeviceNumber)
	if err := devices.WaitOpen(ctx, dev); err != nil {
		return fmt.Errorf("VPMem device %d: %w", cfg.DeviceNumber, err)
	}
	var made []string
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				_ = d.Mapper.Remove(ctx, made[i])
			}
		}
	}()
	if cfg.Mapping != nil {
		name := LinearName(cfg.DeviceNumber, *cfg.Mapping)
		tgt, err := devicemapper.LinearTarget(dev, cfg.Mapping.Offset, cfg.Mapping.Size)
		if err != nil {
			return err
		}
		if dev, err = d.Mapper.Create(ctx, name, true, []devicemapper.Target{tgt}); err != nil {
			return err
		}
		made = append(made, name)
	}
	if cfg.Verity {
		info, err := verity.Read(dev)
		if err != nil {
			return fmt.Errorf("read verity metadata: %w", err)
		}
		tgt, err := info.Target(dev)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("dm-verity-pmem%d-%s", cfg.DeviceNumber, info.RootDigest)
		if cfg.Mapping != nil {
			name = fmt.Sprintf("dm-verity-pmem%d-%d-%s", cfg.DeviceNumber, cfg.Mapping.Offset, info.RootDigest)
		}
		if dev, err = d.Mapper.Create(ctx, name, true, []devicemapper.Target{tgt}); err != nil {
			return err
		}
		made = append(made, name)
	}
	if err := os.MkdirAll(cfg.MountPath, dirMode); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if err := unix.Mount(dev, cfg.MountPath, "ext4", unix.MS_RDONLY, "noload"); err != nil {
		_ = mount.RemoveAllNoMounts(cfg.MountPath)
		return fmt.Errorf("mount %s at %s: %w", dev, cfg.MountPath, err)
	}
	d.mu.Lock()
	if d.mapped == nil {
		d.mapped = map[string][]string{}
	}
	d.mapped[cfg.MountPath] = made
	d.mu.Unlock()
	logging.Or(d.Log).WithFields(logrus.Fields{"device": dev, "path": cfg.MountPath, "verity": cfg.Verity}).Info("VPMem layer mounted")
	return nil
}

// Unmount unmounts and removes cfg.MountPath, then removes the verity and
// linear devices (removal errors are logged, not returned). The linear
// device of a packed layer is removed even when this Devices did not make
// it (e.g. after a GCS restart).
func (d *Devices) Unmount(ctx context.Context, cfg Config) error {
	if err := mount.UnmountAndRemove(ctx, cfg.MountPath); err != nil {
		return fmt.Errorf("unmount VPMem layer: %w", err)
	}
	d.mu.Lock()
	made, known := d.mapped[cfg.MountPath]
	delete(d.mapped, cfg.MountPath)
	d.mu.Unlock()
	if !known && cfg.Mapping != nil {
		made = []string{LinearName(cfg.DeviceNumber, *cfg.Mapping)}
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := d.Mapper.Remove(ctx, made[i]); err != nil && !errors.Is(err, unix.ENXIO) {
			logging.Or(d.Log).WithError(err).WithField("name", made[i]).Warn("remove device-mapper device")
		}
	}
	return nil
}
