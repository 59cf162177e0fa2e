// Package prot holds the wire types of the HCS bridge protocol spoken
// between a Windows host and the Linux GCS: message identifiers, the 16-byte
// frame header, every request, response and notification body, the
// ModifySettings resource payloads, and the HRESULT values the host expects.
//
// The package is pure data plus encoding helpers. JSON key names and integer
// widths follow the reference peers exactly (see docs/protocol.md): keys are
// PascalCase with the renames hosts use (ContainerId, ActivityId, ProcessId,
// OciSpecification, ...), Result is a signed 32-bit HRESULT, and several
// fields carry a JSON document encoded as a JSON string.
package prot
