package storage

import "errors"

// ErrBadPath is returned for a path that is relative, not clean or escapes
// with "..".
var ErrBadPath = errors.New("path must be absolute and clean")
