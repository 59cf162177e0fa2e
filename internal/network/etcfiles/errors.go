package etcfiles

import "errors"

// Sentinel errors; callers match them with errors.Is.
var (
	// ErrInvalidHostname is returned for an empty, too long or badly
	// formed host name.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrTooManySearchDomains is returned when a resolv.conf would list more
	// search domains than the resolver reads.
	ErrTooManySearchDomains = errors.New("too many DNS search domains")
)
