package initrd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Entry is one file system object of an image. Exactly one of Data,
// Source, Target is meaningful, depending on the type in Mode.
type Entry struct {
	Mode uint32 // type bits | permission bits
	// Data is the content of a regular file given in memory.
	Data []byte
	// Source is a host file whose content is streamed at write time.
	Source string
	// Target is a symlink's target.
	Target string
	// Major and Minor name a device node.
	Major, Minor uint32
}

// Tree is an image under construction: paths (without a leading slash)
// mapped to entries. Parent directories are created implicitly (0755).
type Tree struct {
	entries map[string]Entry
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]Entry{}} }

func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" || strings.Contains(p, "\x00") {
		return "", fmt.Errorf("%w: %q", ErrInvalidPath, p)
	}
	return c[1:], nil
}

// Add puts e at p, creating missing parents. Adding an identical entry
// twice is allowed; a different one at the same path is ErrConflict,
// except that a directory may be re-added with any permissions (the first
// wins).
func (t *Tree) Add(p string, e Entry) error {
	c, err := cleanPath(p)
	if err != nil {
		return err
	}
	if dir := path.Dir(c); dir != "." {
		if err := t.Dir(dir, 0o755); err != nil {
			return err
		}
	}
	if old, ok := t.entries[c]; ok {
		if old.Mode&ModeTypeMask == ModeDir && e.Mode&ModeTypeMask == ModeDir {
			return nil
		}
		if old.Mode != e.Mode || old.Source != e.Source || old.Target != e.Target ||
			old.Major != e.Major || old.Minor != e.Minor || !bytes.Equal(old.Data, e.Data) {
			return fmt.Errorf("%w at %s", ErrConflict, c)
		}
		return nil
	}
	t.entries[c] = e
	return nil
}

// Dir adds a directory.
func (t *Tree) Dir(p string, perm uint32) error {
	return t.Add(p, Entry{Mode: ModeDir | perm&0o7777})
}

// File adds a regular file with in-memory content.
func (t *Tree) File(p string, perm uint32, data []byte) error {
	return t.Add(p, Entry{Mode: ModeRegular | perm&0o7777, Data: data})
}

// HostFile adds a regular file whose content is read from src when the
// image is written. src must exist now.
func (t *Tree) HostFile(p string, perm uint32, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMissingInput, p, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrMissingInput, src)
	}
	return t.Add(p, Entry{Mode: ModeRegular | perm&0o7777, Source: src})
}

// Symlink adds a symbolic link p -> target.
func (t *Tree) Symlink(p, target string) error {
	return t.Add(p, Entry{Mode: ModeSymlink | 0o777, Target: target})
}

// CharDev adds a character device node.
func (t *Tree) CharDev(p string, perm, major, minor uint32) error {
	return t.Add(p, Entry{Mode: ModeCharDev | perm&0o7777, Major: major, Minor: minor})
}

// Paths returns every path in write order (sorted, so parents come first).
func (t *Tree) Paths() []string {
	ps := make([]string, 0, len(t.entries))
	for p := range t.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Lookup returns the entry at p.
func (t *Tree) Lookup(p string) (Entry, bool) {
	c, err := cleanPath(p)
	if err != nil {
		return Entry{}, false
	}
	e, ok := t.entries[c]
	return e, ok
}

// content opens an entry's content and returns its size.
func (e Entry) content() (io.ReadCloser, int64, error) {
	switch e.Mode & ModeTypeMask {
	case ModeRegular:
		if e.Source == "" {
			return io.NopCloser(bytes.NewReader(e.Data)), int64(len(e.Data)), nil
		}
		f, err := os.Open(e.Source)
		if err != nil {
			return nil, 0, fmt.Errorf("open %s: %w", e.Source, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("stat %s: %w", e.Source, err)
		}
		return f, st.Size(), nil
	case ModeSymlink:
		return io.NopCloser(strings.NewReader(e.Target)), int64(len(e.Target)), nil
	default:
		return io.NopCloser(bytes.NewReader(nil)), 0, nil
	}
}

// WriteCPIO writes the tree as an uncompressed newc archive.
func (t *Tree) WriteCPIO(w io.Writer) error {
	cw := NewWriter(w)
	for i, p := range t.Paths() {
		e := t.entries[p]
		rc, size, err := e.content()
		if err != nil {
			return err
		}
		if size > 0xFFFFFFFF {
			rc.Close()
			return fmt.Errorf("%s: %w: %d bytes does not fit newc", p, ErrSizeMismatch, size)
		}
		nlink := uint32(1)
		if e.Mode&ModeTypeMask == ModeDir {
			nlink = 2
		}
		h := &Header{Name: p, Ino: uint32(i + 1), Mode: e.Mode, Nlink: nlink,
			Size: uint32(size), RdevMajor: e.Major, RdevMinor: e.Minor}
		if err := cw.WriteHeader(h); err != nil {
			rc.Close()
			return fmt.Errorf("%s: %w", p, err)
		}
		n, err := io.Copy(cw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if n != size {
			return fmt.Errorf("%s: %w: wrote %d of %d (file changed?)", p, ErrSizeMismatch, n, size)
		}
	}
	return cw.Close()
}

// newGzip returns a gzip writer whose header has no name, comment or time,
// so that equal input gives equal bytes.
func newGzip(w io.Writer) (*gzip.Writer, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	zw.Header = gzip.Header{OS: 3} // Unix; name, comment and mtime empty
	return zw, nil
}

// WriteInitrd writes the tree as a gzip-compressed newc archive, the form
// the kernel takes as an initrd.
func (t *Tree) WriteInitrd(w io.Writer) error {
	zw, err := newGzip(w)
	if err != nil {
		return err
	}
	if err := t.WriteCPIO(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip close: %w", err)
	}
	return nil
}

// WriteRootfsTar writes the tree as a gzip-compressed tar archive (the
// image's root file system for tools that make a VHD from it).
func (t *Tree) WriteRootfsTar(w io.Writer) error {
	zw, err := newGzip(w)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0)
	for _, p := range t.Paths() {
		e := t.entries[p]
		h := &tar.Header{Name: p, Mode: int64(e.Mode & 0o7777), ModTime: epoch, Format: tar.FormatPAX}
		switch e.Mode & ModeTypeMask {
		case ModeDir:
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case ModeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
		case ModeCharDev:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(e.Major), int64(e.Minor)
		case ModeBlkDev:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(e.Major), int64(e.Minor)
		case ModeFIFO:
			h.Typeflag = tar.TypeFifo
		default:
			h.Typeflag = tar.TypeReg
		}
		rc, size, err := e.content()
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = size
		}
		if err := tw.WriteHeader(h); err != nil {
			rc.Close()
			return fmt.Errorf("tar %s: %w", p, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, rc); err != nil {
				rc.Close()
				return fmt.Errorf("tar %s: %w", p, err)
			}
		}
		rc.Close()
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar close: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip close: %w", err)
	}
	return nil
}
