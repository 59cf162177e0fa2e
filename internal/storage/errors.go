package storage

import "errors"

// ErrBadPath is returned for a path that is relative, not clean or escapes
// with "..".
var ErrBadPath = errors.New("path must be absolute and clean")

// ErrOutsideRoot is returned for a mount point (or a directory the guest
// would create or delete) that is not below the mount root, also after
// resolving symbolic links.
var ErrOutsideRoot = errors.New("path outside the mount root")
