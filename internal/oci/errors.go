package oci

import "errors"

// Sentinel errors; the returned errors wrap them with context.
var (
	// ErrInvalidID: a container, sandbox or virtual pod id that cannot be
	// used as a single path component.
	ErrInvalidID = errors.New("invalid id")
	// ErrUnsupportedContainerType: a CRI container-type other than
	// "sandbox" or "container".
	ErrUnsupportedContainerType = errors.New("unsupported 'io.kubernetes.cri.container-type'")
	// ErrMissingSandboxID: a workload without a sandbox id.
	ErrMissingSandboxID = errors.New("unsupported 'io.kubernetes.cri.sandbox-id'")
	// ErrInvalidHostname: a hostname that is not safe to write into
	// /etc/hosts.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrWorkloadHostname: a workload container that sets a hostname.
	ErrWorkloadHostname = errors.New("spec hostname must be empty")
	// ErrTooManySearchDomains: more than MaxDNSSearch DNS search domains.
	ErrTooManySearchDomains = errors.New("too many DNS search domains")
	// ErrInvalidDNSValue: a DNS suffix or server containing whitespace or
	// control characters.
	ErrInvalidDNSValue = errors.New("invalid DNS value")
	// ErrNoNetworkNamespace: a sandbox whose network namespace is unknown
	// and that does not skip pod networking.
	ErrNoNetworkNamespace = errors.New("network namespace not found")
	// ErrInvalidUser: a malformed user string.
	ErrInvalidUser = errors.New("invalid user string")
	// ErrUserNotFound: a user or group name that matches no entry.
	ErrUserNotFound = errors.New("user or group not found")
	// ErrAmbiguousUser: a user or group name that matches several entries.
	ErrAmbiguousUser = errors.New("user or group name is ambiguous")
	// ErrIDOutOfRange: a uid or gid outside [0, 2^32-1].
	ErrIDOutOfRange = errors.New("id out of uint32 range")
	// ErrInvalidMount: a special mount source or destination that cannot
	// be resolved.
	ErrInvalidMount = errors.New("invalid mount")
	// ErrInvalidAnnotation: an annotation whose value cannot be used.
	ErrInvalidAnnotation = errors.New("invalid annotation")
	// ErrNotDevice: a path that is not a character or block device node.
	ErrNotDevice = errors.New("not a device node")
	// ErrUnsupportedDevice: an assigned device (windows.devices) kind this
	// guest does not implement.
	ErrUnsupportedDevice = errors.New("unsupported assigned device")
	// ErrInvalidSpec: a spec missing a section the setup needs.
	ErrInvalidSpec = errors.New("invalid spec")
)
