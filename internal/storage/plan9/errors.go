package plan9

import "errors"

var (
	// ErrBadShareName is returned for a share name that would alter the
	// mount options.
	ErrBadShareName = errors.New("invalid Plan 9 share name")
	// ErrNoFD is returned when the transport's connection has no file
	// descriptor to pass to the kernel.
	ErrNoFD = errors.New("connection has no file descriptor")
	// ErrNo9p is added to a mount failure with ENODEV: the running kernel
	// has no 9p file system.
	ErrNo9p = errors.New("the kernel has no 9p file system support")
)
