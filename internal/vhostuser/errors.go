package vhostuser

import "errors"

var (
	// ErrShortMessage is a message or payload shorter than its type needs.
	ErrShortMessage = errors.New("vhost-user: short message")
	// ErrBadVersion is a header whose version bits are not 1.
	ErrBadVersion = errors.New("vhost-user: unsupported message version")
	// ErrTooLarge is a payload size above MaxPayload or a table above
	// MaxRegions.
	ErrTooLarge = errors.New("vhost-user: message too large")
	// ErrBadRegion is a memory region that is empty, overflows or has no fd.
	ErrBadRegion = errors.New("vhost-user: bad memory region")
	// ErrNotMapped is an address outside every mapped memory region.
	ErrNotMapped = errors.New("vhost-user: address outside guest memory")
	// ErrBadRing is a ring index or ring set-up the device cannot use.
	ErrBadRing = errors.New("vhost-user: bad vring")
)
