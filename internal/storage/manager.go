package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/command"
	"github.com/opengcs/opengcs/internal/logging"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/storage/mount"
	"github.com/opengcs/opengcs/internal/storage/overlay"
	"github.com/opengcs/opengcs/internal/storage/plan9"
	"github.com/opengcs/opengcs/internal/storage/pmem"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// DefaultLookupTimeout bounds waiting for a hot-added device.
const DefaultLookupTimeout = 5 * time.Second

// DefaultMountRoot is the directory below which every path a host names as
// a mount point (or a directory to create or remove) must lie. All the
// paths hosts use (/run/mounts/..., /run/layers/..., /run/gcs/...) are
// below it.
const DefaultMountRoot = "/run"

// Manager performs the storage ModifySettings operations. It does no
// reference counting: every Add is one mount, every Remove one unmount.
type Manager struct {
	disks     *scsi.Disks
	pmem      *pmem.Devices
	transport transport.Transport
	timeout   time.Duration
	mountRoot string
	log       *logrus.Entry
}

// Option adjusts a Manager made by NewManager.
type Option func(*Manager)

// WithMountRoot replaces DefaultMountRoot (tests use a private directory).
func WithMountRoot(dir string) Option {
	return func(m *Manager) { m.mountRoot = filepath.Clean(dir) }
}

// WithLogger gives the Manager and the disk, VPMem and device-mapper code
// below it their logger (default: discard).
func WithLogger(log *logrus.Entry) Option {
	return func(m *Manager) { m.log = log }
}

// NewManager returns a Manager using roots for device lookup and t to dial
// the host's Plan 9 servers.
//
// run executes helper programs (mkfs); nil means command.Plain.
func NewManager(roots devices.Roots, t transport.Transport, run command.Runner, opts ...Option) *Manager {
	mapper := devicemapper.New(roots)
	m := &Manager{
		disks:     &scsi.Disks{Lookup: scsi.Lookup{Roots: roots}, Mapper: mapper, LookupTimeout: DefaultLookupTimeout, Runner: run},
		pmem:      &pmem.Devices{Roots: roots, Mapper: mapper},
		transport: t,
		timeout:   DefaultLookupTimeout,
		mountRoot: DefaultMountRoot,
	}
	for _, o := range opts {
		o(m)
	}
	m.log = logging.Or(m.log)
	mapper.Log, m.disks.Log, m.pmem.Log = m.log, m.log, m.log
	return m
}

// checkPath rejects relative, unclean or escaping paths.
func checkPath(what, p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return prot.NewError(prot.HrVmcomputeInvalidJSON, fmt.Errorf("%s %q: %w", what, p, ErrBadPath))
	}
	return nil
}

// checkTarget checks a path the guest will create, mount on, unmount or
// delete: it must be clean, absolute and strictly below the mount root, also
// after resolving the symbolic links of its existing part (the last element
// is not followed when keepLast is set: a BlockDev mount path is itself a
// symlink).
func (m *Manager) checkTarget(what, p string, keepLast bool) error {
	if err := checkPath(what, p); err != nil {
		return err
	}
	outside := func(shown string) error {
		return prot.NewError(prot.HrFail, fmt.Errorf("%s %q%s is outside %s (paths must lie below it): %w", what, p, shown, m.mountRoot, ErrOutsideRoot))
	}
	if !strings.HasPrefix(p, m.mountRoot+"/") {
		return outside("")
	}
	root, err := resolveExisting(m.mountRoot)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("resolve %s: %w", m.mountRoot, err))
	}
	resolve, last := p, ""
	if keepLast {
		resolve, last = filepath.Dir(p), filepath.Base(p)
	}
	resolved, err := resolveExisting(resolve)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("%s %q: %w", what, p, err))
	}
	resolved = filepath.Join(resolved, last)
	if !strings.HasPrefix(resolved, root+"/") {
		return outside(fmt.Sprintf(" (resolves to %q)", resolved))
	}
	return nil
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of the absolute path p and appends the rest unchanged.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; cur = filepath.Dir(cur) {
		if _, err := os.Lstat(cur); err == nil {
			resolved, err := filepath.EvalSymlinks(cur)
			if err != nil {
				return "", fmt.Errorf("resolve %s: %w", cur, err)
			}
			return filepath.Join(resolved, rest), nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("stat %s: %w", cur, err)
		}
		if cur == "/" {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

// fail wraps err as an E_FAIL prot.Error unless it already carries one.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*prot.Error); ok {
		return err
	}
	return prot.NewError(prot.HrFail, fmt.Errorf("%s: %w", op, err))
}

func diskConfig(s *prot.LCOWMappedVirtualDisk) scsi.Config {
	return scsi.Config{
		MountPath: s.MountPath, Controller: s.Controller, Lun: s.Lun, Partition: s.Partition,
		ReadOnly: s.ReadOnly, Encrypted: s.Encrypted, Options: s.Options, BlockDev: s.BlockDev,
		EnsureFilesystem: s.EnsureFilesystem, Filesystem: s.Filesystem,
	}
}

func (m *Manager) checkDisk(s *prot.LCOWMappedVirtualDisk) error {
	if err := m.checkTarget("MountPath", s.MountPath, s.BlockDev); err != nil {
		return err
	}
	if _, err := scsi.ControllerGUID(s.Controller); err != nil {
		return prot.NewError(prot.HrFail, err)
	}
	if s.Lun > 63 {
		return prot.Errorf(prot.HrFail, "LUN %d out of range 0..63", s.Lun)
	}
	for _, o := range s.Options {
		if strings.ContainsAny(o, ",\x00") {
			return prot.Errorf(prot.HrVmcomputeInvalidJSON, "mount option %q is malformed", o)
		}
	}
	return nil
}

// AddMappedVirtualDisk mounts (or exposes) a SCSI disk. An empty MountPath
// is a no-op.
func (m *Manager) AddMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return nil
	}
	if err := m.checkDisk(s); err != nil {
		return err
	}
	return fail("add MappedVirtualDisk", m.disks.Mount(ctx, diskConfig(s)))
}

// RemoveMappedVirtualDisk unmounts a SCSI disk; the disk need not exist.
func (m *Manager) RemoveMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return nil
	}
	if err := m.checkDisk(s); err != nil {
		return err
	}
	return fail("remove MappedVirtualDisk", m.disks.Unmount(ctx, diskConfig(s)))
}

// RemoveSCSIDevice unplugs a SCSI device guest-side; a missing device is a
// success.
func (m *Manager) RemoveSCSIDevice(ctx context.Context, s *prot.SCSIDevice) error {
	if _, err := scsi.ControllerGUID(s.Controller); err != nil {
		return prot.NewError(prot.HrFail, err)
	}
	return fail("remove SCSIDevice", m.disks.Lookup.Unplug(ctx, s.Controller, s.Lun))
}

func pmemConfig(s *prot.LCOWMappedVPMemDevice) pmem.Config {
	c := pmem.Config{DeviceNumber: s.DeviceNumber, MountPath: s.MountPath}
	if s.MappingInfo != nil {
		c.Mapping = &pmem.Mapping{Offset: s.MappingInfo.DeviceOffsetInBytes, Size: s.MappingInfo.DeviceSizeInBytes}
	}
	return c
}

// AddVPMem mounts a VPMem layer read-only.
func (m *Manager) AddVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	if err := m.checkTarget("MountPath", s.MountPath, false); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	return fail("add VPMemDevice", m.pmem.Mount(ctx, pmemConfig(s)))
}

// RemoveVPMem unmounts a VPMem layer and removes its mapper devices.
func (m *Manager) RemoveVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	if err := m.checkTarget("MountPath", s.MountPath, false); err != nil {
		return err
	}
	return fail("remove VPMemDevice", m.pmem.Unmount(ctx, pmemConfig(s)))
}

// AddMappedDirectory mounts a Plan 9 share of the host.
func (m *Manager) AddMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	if err := m.checkTarget("MountPath", s.MountPath, false); err != nil {
		return err
	}
	if s.Port < 0 {
		return prot.Errorf(prot.HrVmcomputeInvalidJSON, "Port %d is negative", s.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	cfg := plan9.Config{MountPath: s.MountPath, Port: uint32(s.Port), ShareName: s.ShareName, ReadOnly: s.ReadOnly}
	return fail("add MappedDirectory", plan9.Mount(ctx, m.log, m.transport, cfg))
}

// RemoveMappedDirectory unmounts a Plan 9 share.
func (m *Manager) RemoveMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	if err := m.checkTarget("MountPath", s.MountPath, false); err != nil {
		return err
	}
	return fail("remove MappedDirectory", plan9.Unmount(ctx, s.MountPath))
}

// AddCombinedLayers mounts a container's overlay root file system.
func (m *Manager) AddCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	if err := m.checkTarget("ContainerRootPath", s.ContainerRootPath, false); err != nil {
		return err
	}
	if s.ScratchPath != "" {
		if err := m.checkTarget("ScratchPath", s.ScratchPath, false); err != nil {
			return err
		}
	}
	layers := make([]string, 0, len(s.Layers))
	for _, l := range s.Layers {
		if err := checkPath("layer Path", l.Path); err != nil {
			return err
		}
		layers = append(layers, l.Path)
	}
	// A second overlay stacked on a mounted root would hide the first and
	// leak it when the root is removed.
	if mounted, err := mount.IsMountPoint(s.ContainerRootPath); err == nil && mounted {
		return prot.Errorf(prot.HrFail, "add CombinedLayers: %s is already mounted", s.ContainerRootPath)
	}
	return fail("add CombinedLayers", overlay.Mount(m.log, layers, s.ScratchPath, s.ContainerRootPath))
}

// RemoveCombinedLayers unmounts a container's root file system.
func (m *Manager) RemoveCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	if err := m.checkTarget("ContainerRootPath", s.ContainerRootPath, false); err != nil {
		return err
	}
	return fail("remove CombinedLayers", overlay.Unmount(ctx, s.ContainerRootPath))
}
