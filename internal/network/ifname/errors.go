package ifname

import "errors"

// Sentinel errors; callers match them with errors.Is.
var (
	// ErrInvalidID is returned for an adapter id that is not a GUID.
	ErrInvalidID = errors.New("adapter id is not a GUID")
	// ErrNotFound is returned when the device or its net directory did not
	// appear before the deadline.
	ErrNotFound = errors.New("network device not found")
	// ErrAmbiguous is returned when the device's net directory holds no
	// interface or more than one.
	ErrAmbiguous = errors.New("device does not name exactly one interface")
)
