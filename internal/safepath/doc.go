// Package safepath joins untrusted, host- or container-supplied paths onto a
// trusted directory so that the result can never leave that directory.
//
// Two kinds of escape are handled:
//
//   - lexical: ".." components that would climb above the root are rejected
//     with ErrEscapes (absolute paths are taken as relative to the root, and
//     NUL bytes are rejected);
//   - symlinks: existing components are resolved as if the root were "/",
//     so a symlink (absolute or relative) planted below the root stays
//     below it. This is the rule a container rootfs needs: an absolute
//     symlink inside it points inside it.
//
// Join returns a path string (for mount sources and files created by the
// GCS); OpenFile opens a file for reading without the check-then-use race
// (it resolves the path with openat2/O_PATH walking, see
// github.com/cyphar/filepath-securejoin/pathrs-lite). MkdirAll creates the
// missing directories of a joined path with an exact mode (the process umask
// is not consulted and not changed).
package safepath
