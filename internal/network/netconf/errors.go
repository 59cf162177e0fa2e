package netconf

import "errors"

// Sentinel errors; callers match them with errors.Is.
var (
	// ErrInvalidConfig is returned by Parse for settings that cannot be
	// applied (bad address, prefix, route or MTU overhead).
	ErrInvalidConfig = errors.New("invalid network adapter settings")
	// ErrDHCP is returned when the DHCP client fails or times out.
	ErrDHCP = errors.New("DHCP failed")
)
