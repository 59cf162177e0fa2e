package devicemapper

import "errors"

var (
	// ErrUnavailable is returned when the running kernel has no
	// device-mapper driver.
	ErrUnavailable = errors.New("kernel has no device-mapper support")
	// ErrBadName is returned for a device name the kernel would refuse or
	// that would escape /dev/mapper.
	ErrBadName = errors.New("invalid device-mapper name")
	// ErrBadTarget is returned for an unusable target description.
	ErrBadTarget = errors.New("invalid device-mapper target")
)
