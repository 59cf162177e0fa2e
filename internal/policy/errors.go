package policy

import "errors"

// Sentinel errors. Denials themselves wrap the enforcer's error, whose text
// carries the policy decision.
var (
	// ErrPolicyAlreadySet refuses a second SecurityPolicy request; the text
	// is the reference guest's.
	ErrPolicyAlreadySet = errors.New("security policy has already been set")
	// ErrHostDataMismatch refuses a policy whose digest is not the HOST_DATA
	// the hardware measured at launch.
	ErrHostDataMismatch = errors.New("security policy digest does not match the SNP report's HOST_DATA")
	// ErrBadStance is an initial stance other than allow or deny.
	ErrBadStance = errors.New("initial policy stance must be allow or deny")
	// ErrFragment refuses a fragment that fails the COSE_Sign1 or did:x509
	// checks.
	ErrFragment = errors.New("security policy fragment refused")
	// ErrInvalidID refuses, in confidential mode, a container or sandbox
	// id that is not 64 hexadecimal digits (or the null GUID).
	ErrInvalidID = errors.New("invalid container id")
	// ErrConfidentialRequest refuses a request that confidential mode
	// forbids whatever the policy says: mount options, path layout, share
	// names, unmounting what does not exist.
	ErrConfidentialRequest = errors.New("refused in confidential mode")
	// ErrMountState refuses a mount or unmount that contradicts the
	// guest's record of its mounts (a path mounted twice, a device still
	// under an overlay, a different device or kind at the path).
	ErrMountState = errors.New("mount state")
	// ErrInconsistent refuses mounts, unmounts and container creation and
	// deletion after an unmount failed in confidential mode.
	ErrInconsistent = errors.New("mount, unmount, container creation and deletion have been disabled in this utility VM due to a previous error")
)
