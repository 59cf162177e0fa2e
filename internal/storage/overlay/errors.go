package overlay

import "errors"

var (
	// ErrNoRootfs is returned when the root file system path is empty.
	ErrNoRootfs = errors.New("container root path is empty")
	// ErrNoLayers is returned when no layer is given.
	ErrNoLayers = errors.New("no layers given")
	// ErrBadPath is returned for a path that cannot be used in overlay
	// options (relative, not clean, or containing ',' ':' or NUL).
	ErrBadPath = errors.New("path not usable for overlay")
)
