package mount

import "errors"

var (
	// ErrStillMounted is returned when a path stays mounted after the
	// bounded number of unmount attempts.
	ErrStillMounted = errors.New("path is still mounted")
	// ErrMountsBelow is returned instead of deleting a directory that has
	// other file systems mounted somewhere below it.
	ErrMountsBelow = errors.New("file systems are mounted below the path")
	// ErrUnknownPropagation names an option that is not a propagation
	// keyword.
	ErrUnknownPropagation = errors.New("unknown propagation option")
)
