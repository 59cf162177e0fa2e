package scsi

import "errors"

var (
	// ErrBadController is returned for a controller index outside 0..3.
	ErrBadController = errors.New("SCSI controller index out of range")
	// ErrNoHost is returned when the controller has no SCSI host in sysfs.
	ErrNoHost = errors.New("no SCSI host for controller")
	// ErrAmbiguous is returned when a SCSI address has several block devices.
	ErrAmbiguous = errors.New("more than one block device at SCSI address")
	// ErrUnknownFilesystem is returned when the file system cannot be
	// detected and none was named.
	ErrUnknownFilesystem = errors.New("unknown file system")
	// ErrUnsupportedFilesystem is returned for a file system other than
	// ext4 or xfs.
	ErrUnsupportedFilesystem = errors.New("unsupported file system")
)
