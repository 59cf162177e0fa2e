package storage

import (
	"context"

	"github.com/opengcs/opengcs/internal/storage/verity"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// DiskRootHash returns the dm-verity root hash of a read-only SCSI layer,
// read from the verity superblock that follows its file system (the hash a
// security policy pins the layer by). A layer without verity metadata is an
// error, as in the reference guest's confidential mode.
func (m *Manager) DiskRootHash(ctx context.Context, s *prot.LCOWMappedVirtualDisk) (string, error) {
	if err := m.checkDisk(s); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	dev, err := m.disks.Lookup.Device(ctx, s.Controller, s.Lun, s.Partition)
	if err != nil {
		return "", fail("find SCSI disk", err)
	}
	info, err := verity.Read(dev)
	if err != nil {
		return "", fail("read dm-verity superblock", err)
	}
	return info.RootDigest, nil
}

// VPMemRootHash is DiskRootHash for a VPMem layer.
func (m *Manager) VPMemRootHash(ctx context.Context, s *prot.LCOWMappedVPMemDevice) (string, error) {
	info, err := verity.Read(m.pmem.DevicePath(s.DeviceNumber))
	if err != nil {
		return "", fail("read dm-verity superblock", err)
	}
	return info.RootDigest, nil
}
