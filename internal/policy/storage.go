package policy

import (
	"context"
	"path/filepath"
	"strings"
	"sync"

	"github.com/Microsoft/hcsshim/pkg/securitypolicy"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// Storage is the guest's storage resource interface, which GuardStorage
// wraps; internal/uvm uses this definition as its own.
type Storage interface {
	AddMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error
	RemoveMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error
	RemoveSCSIDevice(ctx context.Context, s *prot.SCSIDevice) error
	AddVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error
	RemoveVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error
	AddMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error
	RemoveMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error
	AddCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error
	RemoveCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error
}

// RootHasher reads the dm-verity root hash of a read-only layer device (""
// when the device carries no verity metadata). A Storage that implements
// it lets the policy pin layers by hash.
type RootHasher interface {
	DiskRootHash(ctx context.Context, s *prot.LCOWMappedVirtualDisk) (string, error)
	VPMemRootHash(ctx context.Context, s *prot.LCOWMappedVPMemDevice) (string, error)
}

// GuardStorage returns s with every mount and unmount checked by the
// policy first. Each operation is one policy transaction: if the policy
// allows it but the operation then fails, the policy's bookkeeping (which
// devices and overlays it believes mounted) is rolled back, and a denied
// request reaches s not at all.
func (e *Enforcer) GuardStorage(s Storage) Storage {
	g := &guardedStorage{e: e, s: s, encrypted: map[string]bool{}}
	g.hasher, _ = s.(RootHasher)
	return g
}

type guardedStorage struct {
	e      *Enforcer
	s      Storage
	hasher RootHasher

	mu sync.Mutex
	// encrypted records the read-write disks mounted encrypted, for the
	// scratch check.
	encrypted map[string]bool
}

// tx runs check then op as one policy transaction. Transactions are
// serialized only under a real policy (the Rego enforcer refuses
// concurrent ones); the open and closed doors keep no metadata, so storage
// requests stay concurrent outside confidential mode.
func (g *guardedStorage) tx(check func(p securitypolicy.SecurityPolicyEnforcer) error, op func() error) error {
	g.e.mu.Lock()
	p := g.e.current()
	g.e.mu.Unlock()
	if p.EncodedSecurityPolicy() != "" {
		g.e.txMu.Lock()
		defer g.e.txMu.Unlock()
	}
	return p.WithMetadataRollback(func() error {
		if err := g.e.evalLocked(func(securitypolicy.SecurityPolicyEnforcer) error { return check(p) }); err != nil {
			return err
		}
		return op()
	})
}

func (g *guardedStorage) AddMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return g.s.AddMappedVirtualDisk(ctx, s)
	}
	hash := ""
	if s.ReadOnly && !s.BlockDev && g.hasher != nil && g.e.Confidential() {
		h, err := g.hasher.DiskRootHash(ctx, s)
		if err != nil {
			return prot.NewError(prot.HrFail, err)
		}
		hash = h
	}
	check := func(p securitypolicy.SecurityPolicyEnforcer) error {
		switch {
		case s.BlockDev:
			return deny(p.EnforceMountBlockDevicePolicy(ctx, s.MountPath),
				"creating blockdev symlink at %s (-> scsi controller %d lun %d) denied by policy", s.MountPath, s.Controller, s.Lun)
		case s.ReadOnly:
			return deny(p.EnforceDeviceMountPolicy(ctx, s.MountPath, hash),
				"mounting scsi device controller %d lun %d onto %s denied by policy", s.Controller, s.Lun, s.MountPath)
		default:
			return deny(p.EnforceRWDeviceMountPolicy(ctx, s.MountPath, s.Encrypted, s.EnsureFilesystem, s.Filesystem),
				"mounting scsi device controller %d lun %d onto %s denied by policy", s.Controller, s.Lun, s.MountPath)
		}
	}
	return g.tx(check, func() error {
		if err := g.s.AddMappedVirtualDisk(ctx, s); err != nil {
			return err
		}
		if !s.ReadOnly && !s.BlockDev {
			g.mu.Lock()
			g.encrypted[filepath.Clean(s.MountPath)] = s.Encrypted
			g.mu.Unlock()
		}
		return nil
	})
}

func (g *guardedStorage) RemoveMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return g.s.RemoveMappedVirtualDisk(ctx, s)
	}
	check := func(p securitypolicy.SecurityPolicyEnforcer) error {
		switch {
		case s.BlockDev:
			return deny(p.EnforceUnmountBlockDevicePolicy(ctx, s.MountPath),
				"removing blockdev symlink at %s denied by policy", s.MountPath)
		case s.ReadOnly:
			return deny(p.EnforceDeviceUnmountPolicy(ctx, s.MountPath), "unmounting scsi device at %s denied by policy", s.MountPath)
		default:
			return deny(p.EnforceRWDeviceUnmountPolicy(ctx, s.MountPath), "unmounting scsi device at %s denied by policy", s.MountPath)
		}
	}
	return g.tx(check, func() error {
		if err := g.s.RemoveMappedVirtualDisk(ctx, s); err != nil {
			return err
		}
		g.mu.Lock()
		delete(g.encrypted, filepath.Clean(s.MountPath))
		g.mu.Unlock()
		return nil
	})
}

// RemoveSCSIDevice unplugs a device; the reference checks nothing here.
func (g *guardedStorage) RemoveSCSIDevice(ctx context.Context, s *prot.SCSIDevice) error {
	return g.s.RemoveSCSIDevice(ctx, s)
}

func (g *guardedStorage) AddVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	hash := ""
	if g.hasher != nil && g.e.Confidential() {
		h, err := g.hasher.VPMemRootHash(ctx, s)
		if err != nil {
			return prot.NewError(prot.HrFail, err)
		}
		hash = h
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceDeviceMountPolicy(ctx, s.MountPath, hash),
			"mounting pmem device %d onto %s denied by policy", s.DeviceNumber, s.MountPath)
	}, func() error { return g.s.AddVPMem(ctx, s) })
}

func (g *guardedStorage) RemoveVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceDeviceUnmountPolicy(ctx, s.MountPath), "unmounting pmem device from %s denied by policy", s.MountPath)
	}, func() error { return g.s.RemoveVPMem(ctx, s) })
}

func (g *guardedStorage) AddMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforcePlan9MountPolicy(ctx, s.MountPath), "mounting plan9 device at %s denied by policy", s.MountPath)
	}, func() error { return g.s.AddMappedDirectory(ctx, s) })
}

func (g *guardedStorage) RemoveMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforcePlan9UnmountPolicy(ctx, s.MountPath), "unmounting plan9 device at %s denied by policy", s.MountPath)
	}, func() error { return g.s.RemoveMappedDirectory(ctx, s) })
}

// scratchEncrypted reports whether scratch lies on a read-write disk
// mounted encrypted.
func (g *guardedStorage) scratchEncrypted(scratch string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	scratch = filepath.Clean(scratch)
	for mp, enc := range g.encrypted {
		if scratch == mp || strings.HasPrefix(scratch, mp+"/") {
			return enc
		}
	}
	return false
}

func (g *guardedStorage) AddCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	layers := make([]string, len(s.Layers))
	for i, l := range s.Layers {
		layers[i] = l.Path
	}
	encrypted := s.ScratchPath != "" && g.scratchEncrypted(s.ScratchPath)
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		if s.ScratchPath != "" {
			if err := p.EnforceScratchMountPolicy(ctx, s.ScratchPath, encrypted); err != nil {
				return deny(err, "scratch mounting denied by policy")
			}
		}
		return deny(p.EnforceOverlayMountPolicy(ctx, s.ContainerID, layers, s.ContainerRootPath), "overlay creation denied by policy")
	}, func() error { return g.s.AddCombinedLayers(ctx, s) })
}

func (g *guardedStorage) RemoveCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceOverlayUnmountPolicy(ctx, s.ContainerRootPath), "overlay removal denied by policy")
	}, func() error { return g.s.RemoveCombinedLayers(ctx, s) })
}
