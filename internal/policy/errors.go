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
)
