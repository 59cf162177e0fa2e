// Package policy is the gcs's one seam for confidential-container security
// policy: every request the host makes that a policy can refuse goes through
// an Enforcer before the guest acts on it.
//
// The policy language and its evaluation are hcsshim's public
// pkg/securitypolicy (the open-door, closed-door and, with the `rego` build
// tag, Rego enforcers); the SNP attestation report is read with
// pkg/amdsevsnp behind the small SNP interface. This package decides nothing
// itself: it calls the enforcer at the points the reference guest does
// (hcsshim internal/guest/runtime/hcsv2/uvm.go), turns a denial into the
// reference's HRESULT (E_FAIL) with the policy's decision in the message,
// and keeps the set-once, fragment and security-context bookkeeping.
// docs/confidential.md describes every enforcement point.
package policy
