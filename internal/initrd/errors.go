package initrd

import "errors"

// Sentinel errors of the package.
var (
	// ErrBadMagic means a cpio header did not start with "070701".
	ErrBadMagic = errors.New("cpio: not a newc header")
	// ErrBadHeader means a cpio header field was not valid hex.
	ErrBadHeader = errors.New("cpio: malformed header field")
	// ErrNameTooLong means an entry name exceeds the format's limit.
	ErrNameTooLong = errors.New("cpio: name too long")
	// ErrSizeMismatch means a file's content did not match its declared size.
	ErrSizeMismatch = errors.New("cpio: content size does not match header")
	// ErrNoTrailer means the archive ended without a TRAILER!!! entry.
	ErrNoTrailer = errors.New("cpio: missing trailer")
	// ErrInvalidPath means an entry path is absolute, empty or climbs out.
	ErrInvalidPath = errors.New("initrd: invalid entry path")
	// ErrConflict means two different entries were added at one path.
	ErrConflict = errors.New("initrd: conflicting entries")
	// ErrMissingInput means a file the layout needs does not exist.
	ErrMissingInput = errors.New("initrd: missing input")
	// ErrNotELF means a program to copy with its libraries is not an ELF file.
	ErrNotELF = errors.New("initrd: not an ELF file")
	// ErrMissingLibrary means a shared library a program needs was not found.
	ErrMissingLibrary = errors.New("initrd: shared library not found")
)
