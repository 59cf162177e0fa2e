package policy

import (
	"context"
	"fmt"
	"path/filepath"
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
// request reaches s not at all. In confidential mode it also makes the
// checks of confidential.go, keeps its own record of the mounts
// (mounts.go), and sets the inconsistent-state latch when an unmount
// fails. inUse, if not nil, reports whether a running container has its
// root file system at a path: such an overlay is not removed.
func (e *Enforcer) GuardStorage(s Storage, inUse func(rootfs string) bool) Storage {
	g := &guardedStorage{e: e, s: s, inUse: inUse}
	g.hasher, _ = s.(RootHasher)
	return g
}

type guardedStorage struct {
	e      *Enforcer
	s      Storage
	hasher RootHasher
	inUse  func(rootfs string) bool

	// mu guards mounts, which is created once a policy is in force
	// (records).
	mu     sync.Mutex
	mounts *mountTable
}

// records returns the mount record and holds g.mu until done is called;
// the table is nil outside confidential mode.
func (g *guardedStorage) records() (t *mountTable, done func()) {
	conf := g.e.Confidential()
	g.mu.Lock()
	if conf && g.mounts == nil {
		g.mounts = newMountTable()
	}
	if !conf {
		g.mu.Unlock()
		return nil, func() {}
	}
	return g.mounts, g.mu.Unlock
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

// refused wraps a confidential-mode refusal for the wire.
func refused(err error) error {
	if err == nil {
		return nil
	}
	return prot.NewError(prot.HrFail, err)
}

// unmounted runs an unmount op; in confidential mode its failure sets the
// inconsistent-state latch.
func (g *guardedStorage) unmounted(what, p string, op func() error) error {
	if err := op(); err != nil {
		g.e.markInconsistent(fmt.Errorf("unmounting %s at %s failed: %w", what, p, err))
		return err
	}
	return nil
}

func scsiSource(c, l uint8, part uint64) string { return fmt.Sprintf("scsi %d:%d:%d", c, l, part) }

func (g *guardedStorage) AddMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return g.s.AddMappedVirtualDisk(ctx, s)
	}
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	hash := ""
	if g.e.Confidential() {
		if err := diskOptions(s); err != nil {
			return refused(err)
		}
		if s.ReadOnly && !s.BlockDev && g.hasher != nil {
			h, err := g.hasher.DiskRootHash(ctx, s)
			if err != nil {
				return prot.NewError(prot.HrFail, err)
			}
			hash = h
		}
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
		t, done := g.records()
		defer done()
		if t != nil && !s.BlockDev {
			kind := mountRWDevice
			if s.ReadOnly {
				kind = mountRODevice
			}
			if _, err := t.add(s.MountPath, kind, scsiSource(s.Controller, s.Lun, s.Partition), s.Encrypted); err != nil {
				return refused(err)
			}
		}
		if err := g.s.AddMappedVirtualDisk(ctx, s); err != nil {
			if t != nil && !s.BlockDev {
				delete(t.byPath, filepath.Clean(s.MountPath))
			}
			return err
		}
		return nil
	})
}

func (g *guardedStorage) RemoveMappedVirtualDisk(ctx context.Context, s *prot.LCOWMappedVirtualDisk) error {
	if s.MountPath == "" {
		return g.s.RemoveMappedVirtualDisk(ctx, s)
	}
	if err := g.e.CheckConsistent(); err != nil {
		return err
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
		t, done := g.records()
		defer done()
		if t == nil {
			return g.s.RemoveMappedVirtualDisk(ctx, s)
		}
		undo := func() {}
		if !s.BlockDev {
			kind := mountRWDevice
			if s.ReadOnly {
				kind = mountRODevice
			}
			u, err := t.remove(s.MountPath, kind, scsiSource(s.Controller, s.Lun, s.Partition))
			if err != nil {
				return refused(err)
			}
			undo = u
		}
		if err := mustExist("scsi device", s.MountPath); err != nil {
			undo()
			return refused(err)
		}
		if err := g.unmounted("scsi device", s.MountPath, func() error { return g.s.RemoveMappedVirtualDisk(ctx, s) }); err != nil {
			undo()
			return err
		}
		return nil
	})
}

// RemoveSCSIDevice unplugs a device; the reference checks nothing here.
func (g *guardedStorage) RemoveSCSIDevice(ctx context.Context, s *prot.SCSIDevice) error {
	return g.s.RemoveSCSIDevice(ctx, s)
}

func (g *guardedStorage) AddVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	hash := ""
	if g.e.Confidential() {
		if s.MappingInfo != nil {
			return refused(fmt.Errorf("%w: multi-mapped VPMem devices are not supported with verity", ErrConfidentialRequest))
		}
		if g.hasher != nil {
			h, err := g.hasher.VPMemRootHash(ctx, s)
			if err != nil {
				return prot.NewError(prot.HrFail, err)
			}
			hash = h
		}
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceDeviceMountPolicy(ctx, s.MountPath, hash),
			"mounting pmem device %d onto %s denied by policy", s.DeviceNumber, s.MountPath)
	}, func() error { return g.s.AddVPMem(ctx, s) })
}

func (g *guardedStorage) RemoveVPMem(ctx context.Context, s *prot.LCOWMappedVPMemDevice) error {
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceDeviceUnmountPolicy(ctx, s.MountPath), "unmounting pmem device from %s denied by policy", s.MountPath)
	}, func() error {
		if g.e.Confidential() {
			if err := mustExist("pmem device", s.MountPath); err != nil {
				return refused(err)
			}
		}
		return g.unmounted("pmem device", s.MountPath, func() error { return g.s.RemoveVPMem(ctx, s) })
	})
}

func (g *guardedStorage) AddMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforcePlan9MountPolicy(ctx, s.MountPath), "mounting plan9 device at %s denied by policy", s.MountPath)
	}, func() error {
		if g.e.Confidential() {
			if err := shareName(s.ShareName); err != nil {
				return refused(err)
			}
		}
		return g.s.AddMappedDirectory(ctx, s)
	})
}

func (g *guardedStorage) RemoveMappedDirectory(ctx context.Context, s *prot.LCOWMappedDirectory) error {
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforcePlan9UnmountPolicy(ctx, s.MountPath), "unmounting plan9 device at %s denied by policy", s.MountPath)
	}, func() error {
		return g.unmounted("plan9 share", s.MountPath, func() error { return g.s.RemoveMappedDirectory(ctx, s) })
	})
}

func (g *guardedStorage) AddCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	if g.e.Confidential() {
		if err := layersLayout(s); err != nil {
			return refused(err)
		}
	}
	layers := make([]string, len(s.Layers))
	for i, l := range s.Layers {
		layers[i] = l.Path
	}
	encrypted := false
	if s.ScratchPath != "" {
		t, done := g.records()
		encrypted = t != nil && t.encrypted(s.ScratchPath)
		done()
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		if s.ScratchPath != "" {
			if err := p.EnforceScratchMountPolicy(ctx, s.ScratchPath, encrypted); err != nil {
				return deny(err, "scratch mounting denied by policy")
			}
		}
		return deny(p.EnforceOverlayMountPolicy(ctx, s.ContainerID, layers, s.ContainerRootPath), "overlay creation denied by policy")
	}, func() error {
		t, done := g.records()
		defer done()
		if t != nil {
			if err := t.addOverlay(s.ContainerRootPath, layers, s.ScratchPath); err != nil {
				return refused(err)
			}
		}
		if err := g.s.AddCombinedLayers(ctx, s); err != nil {
			if t != nil {
				// The record goes with the failed mount (no undo).
				_, _ = t.remove(s.ContainerRootPath, mountOverlay, filepath.Clean(s.ContainerRootPath))
			}
			return err
		}
		return nil
	})
}

func (g *guardedStorage) RemoveCombinedLayers(ctx context.Context, s *prot.LCOWCombinedLayers) error {
	if err := g.e.CheckConsistent(); err != nil {
		return err
	}
	return g.tx(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceOverlayUnmountPolicy(ctx, s.ContainerRootPath), "overlay removal denied by policy")
	}, func() error {
		t, done := g.records()
		defer done()
		if t == nil {
			return g.s.RemoveCombinedLayers(ctx, s)
		}
		if g.inUse != nil && g.inUse(s.ContainerRootPath) {
			return refused(fmt.Errorf("%w: overlay %q is in use by a running container", ErrConfidentialRequest, s.ContainerRootPath))
		}
		undo, err := t.remove(s.ContainerRootPath, mountOverlay, filepath.Clean(s.ContainerRootPath))
		if err != nil {
			return refused(err)
		}
		if err := g.unmounted("overlay", s.ContainerRootPath, func() error { return g.s.RemoveCombinedLayers(ctx, s) }); err != nil {
			undo()
			return err
		}
		return nil
	})
}
