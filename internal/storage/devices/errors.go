package devices

import "errors"

// ErrTimeout is returned when a device did not appear before the deadline.
var ErrTimeout = errors.New("timed out waiting for device")
