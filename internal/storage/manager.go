package storage

import (
	"context"
	"fmt"
	"github.com/opengcs/opengcs/internal/command"
	"path/filepath"
	"strings"
	"time"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/storage/overlay"
	"github.com/opengcs/opengcs/internal/storage/plan9"
	"github.com/opengcs/opengcs/internal/storage/pmem"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// DefaultLookupTimeout bounds waiting for a hot-added device.
const DefaultLookupTimeout = 5 * time.Second

// Manager performs the storage ModifySettings operations. It does no
// reference counting: every Add is one mount, every Remove one unmount.
type Manager struct {
	disks     *scsi.Disks
	pmem      *pmem.Devices
	transport transport.Transport
	timeout   time.Duration
}

// NewManager returns a Manager using roots for device lookup and t to dial
// the host's Plan 9 servers.
//
// run executes helper programs (mkfs); nil means command.Plain.
func NewManager(roots devices.Roots, t transport.Transport, run command.Runner) *Manager {
	mapper := devicemapper.New(roots)
	return &Manager{
		disks:     &scsi.Disks{Lookup: scsi.Lookup{Roots: roots}, Mapper: mapper, LookupTimeout: DefaultLookupTimeout, Runner: run},
		pmem:      &pmem.Devices{Roots: roots, Mapper: mapper},
		transport: t,
		timeout:   DefaultLookupTimeout,
	}
}

// checkPath rejects relative, unclean or escaping paths.
func checkPath(what, p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return prot.NewError(prot.HrVmcomputeInvalidJSON, fmt.Errorf("%s %q: %w", what, p, ErrBadPath))
	}
	return nil
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

func checkDisk(s *prot.LCOWMappedVirtualDisk) error {
	if err := checkPath("MountPath", s.MountPath); err != nil {
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
	if err := checkDisk(s); err != nil {
		return err
	}
	return fail("add MappedVirtualDisk", m.disks.Mount(ctx, diskConfig(s)))
}

// RemoveMappedVirtualDisk unmounts a SCSI disk; the disk need not exist.
func (m *Manager) RemoveMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return nil
	}
	if err := checkDisk(s); err != nil {
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
	if err := checkPath("MountPath", s.MountPath); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	return fail("add VPMemDevice", m.pmem.Mount(ctx, pmemConfig(s)))
}

// RemoveVPMem unmounts a VPMem layer and removes its mapper devices.
func (m *Manager) RemoveVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	if err := checkPath("MountPath", s.MountPath); err != nil {
		return err
	}
	return fail("remove VPMemDevice", m.pmem.Unmount(ctx, pmemConfig(s)))
}

// AddMappedDirectory mounts a Plan 9 share of the host.
func (m *Manager) AddMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	if err := checkPath("MountPath", s.MountPath); err != nil {
		return err
	}
	if s.Port < 0 {
		return prot.Errorf(prot.HrVmcomputeInvalidJSON, "Port %d is negative", s.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	cfg := plan9.Config{MountPath: s.MountPath, Port: uint32(s.Port), ShareName: s.ShareName, ReadOnly: s.ReadOnly}
	return fail("add MappedDirectory", plan9.Mount(ctx, m.transport, cfg))
}

// RemoveMappedDirectory unmounts a Plan 9 share.
func (m *Manager) RemoveMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	if err := checkPath("MountPath", s.MountPath); err != nil {
		return err
	}
	return fail("remove MappedDirectory", plan9.Unmount(ctx, s.MountPath))
}

// AddCombinedLayers mounts a container's overlay root file system.
func (m *Manager) AddCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	if err := checkPath("ContainerRootPath", s.ContainerRootPath); err != nil {
		return err
	}
	if s.ScratchPath != "" {
		if err := checkPath("ScratchPath", s.ScratchPath); err != nil {
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
	return fail("add CombinedLayers", overlay.Mount(ctx, layers, s.ScratchPath, s.ContainerRootPath))
}

// RemoveCombinedLayers unmounts a container's root file system.
func (m *Manager) RemoveCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	if err := checkPath("ContainerRootPath", s.ContainerRootPath); err != nil {
		return err
	}
	return fail("remove CombinedLayers", overlay.Unmount(ctx, s.ContainerRootPath))
}
