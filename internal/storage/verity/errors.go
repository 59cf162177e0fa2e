package verity

import "errors"

var (
	// ErrNotExt4 is returned when the device does not start with an ext4
	// file system.
	ErrNotExt4 = errors.New("no ext4 superblock")
	// ErrNoVerity is returned when no dm-verity superblock follows the
	// file system.
	ErrNoVerity = errors.New("no dm-verity superblock after the file system")
	// ErrBadSuperblock is returned for an inconsistent verity superblock.
	ErrBadSuperblock = errors.New("invalid dm-verity superblock")
)
