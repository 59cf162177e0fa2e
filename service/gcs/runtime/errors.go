package runtime

import (
	"errors"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// Sentinel errors. Implementations wrap them with the underlying message
// (for runc: its own log line), so errors.Is(err, ErrX) selects the case.
var (
	// ErrContainerDoesNotExist: no container with this id.
	ErrContainerDoesNotExist = errors.New("container does not exist")
	// ErrContainerAlreadyExists: the id is already in use.
	ErrContainerAlreadyExists = errors.New("container already exists")
	// ErrContainerNotRunning: the operation needs a running container and it
	// has stopped (or was never started).
	ErrContainerNotRunning = errors.New("container not running")
	// ErrContainerNotStopped: the operation needs a stopped container and it
	// is still running (for example delete without force).
	ErrContainerNotStopped = errors.New("container still running")
	// ErrInvalidContainerID: the id does not satisfy ValidateID.
	ErrInvalidContainerID = errors.New("invalid container id")
	// ErrProcessDoesNotExist: the process has exited (and was reaped) or was
	// never known.
	ErrProcessDoesNotExist = errors.New("process does not exist")
)

// hresults maps each sentinel to its HRESULT (docs/protocol.md, "HRESULTs").
var hresults = []struct {
	err error
	hr  prot.HResult
}{
	{ErrContainerDoesNotExist, prot.HrVmcomputeSystemNotFound},
	{ErrContainerAlreadyExists, prot.HrVmcomputeSystemAlreadyExists},
	{ErrContainerNotRunning, prot.HrVmcomputeSystemAlreadyStopped},
	{ErrContainerNotStopped, prot.HrVmcomputeInvalidState},
	{ErrInvalidContainerID, prot.HrErrInvalidArg},
	{ErrProcessDoesNotExist, prot.HrErrNotFound},
}

// HResultOf returns the HRESULT for err: the one carried by a *prot.Error in
// its chain, else the one of the first runtime sentinel it wraps. ok is false
// (and the result E_FAIL) when err carries no specific HRESULT; a nil err
// gives S_OK.
func HResultOf(err error) (hr prot.HResult, ok bool) {
	if err == nil {
		return prot.HrOK, true
	}
	var pe *prot.Error
	if errors.As(err, &pe) {
		return pe.Result, true
	}
	for _, m := range hresults {
		if errors.Is(err, m.err) {
			return m.hr, true
		}
	}
	return prot.HrFail, false
}
