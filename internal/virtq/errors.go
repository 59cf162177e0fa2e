package virtq

import "errors"

var (
	// ErrBadQueue is a ring whose size or addresses cannot be used.
	ErrBadQueue = errors.New("virtq: bad queue")
	// ErrBadDescriptor is a descriptor chain the device refuses.
	ErrBadDescriptor = errors.New("virtq: bad descriptor chain")
)
