package kmsg

import "errors"

// ErrInvalidRecord means a /dev/kmsg record does not have the
// "<prio>,<seq>,<usec>,<flags>[,...];<text>" shape.
var ErrInvalidRecord = errors.New("invalid kmsg record")
