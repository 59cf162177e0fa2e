package safepath

import "errors"

// ErrEscapes reports an untrusted path that leaves its root lexically
// (through "..") or contains a NUL byte.
var ErrEscapes = errors.New("path escapes its root")
