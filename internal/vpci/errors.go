package vpci

import "errors"

var (
	// ErrInvalidID is returned for a VMBus id that is not a GUID.
	ErrInvalidID = errors.New("invalid VMBus instance id")
	// ErrAmbiguous is returned when more than one sysfs entry matches a
	// device (the reference refuses to guess as well).
	ErrAmbiguous = errors.New("more than one sysfs entry matches the device")
	// ErrNoDeviceNodes is returned when the device never got a node under
	// /dev before the deadline.
	ErrNoDeviceNodes = errors.New("no device node belongs to the PCI device")
)
