package prot

import "fmt"

// HResult is a Windows HRESULT as the host reads it: a signed 32-bit value
// on the wire.
type HResult uint32

// The HRESULTs the Linux GCS uses (docs/protocol.md, "HRESULTs").
const (
	HrOK                                  HResult = 0
	HrNotImpl                             HResult = 0x80004001
	HrFail                                HResult = 0x80004005
	HrErrNotFound                         HResult = 0x80070490
	HrErrInvalidArg                       HResult = 0x80070057
	HrVmcomputeTimeout                    HResult = 0xC0370109
	HrVmcomputeUnknownMessage             HResult = 0xC037010B
	HrVmcomputeUnsupportedProtocolVersion HResult = 0xC037010C
	HrVmcomputeInvalidJSON                HResult = 0xC037010D
	HrVmcomputeSystemNotFound             HResult = 0xC037010E
	HrVmcomputeSystemAlreadyExists        HResult = 0xC037010F
	HrVmcomputeSystemAlreadyStopped       HResult = 0xC0370110
	HrVmcomputeInvalidState               HResult = 0x80370105
)

// Int32 is the value sent in a Result field.
func (h HResult) Int32() int32 { return int32(h) }

func (h HResult) String() string { return fmt.Sprintf("HRESULT: 0x%08x", uint32(h)) }

// Error is an error that carries the HRESULT to answer with.
type Error struct {
	Result HResult
	Err    error
}

// NewError wraps err with the HRESULT hr.
func NewError(hr HResult, err error) *Error { return &Error{Result: hr, Err: err} }

// Errorf formats an error that carries hr.
func Errorf(hr HResult, format string, args ...any) *Error {
	return &Error{Result: hr, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Result.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }
