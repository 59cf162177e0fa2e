package timesync

import "errors"

var (
	// ErrNoPTPClock means no PTP device reports the clock name "hyperv".
	ErrNoPTPClock = errors.New("no hyperv PTP clock found")
	// ErrChronydNotFound means the chronyd binary is not in the image.
	ErrChronydNotFound = errors.New("chronyd not found")
)
