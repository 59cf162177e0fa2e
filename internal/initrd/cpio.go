package initrd

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// newc layout: a 6-byte magic, thirteen 8-digit hex fields, the NUL
// terminated name padded to a multiple of 4 (counting the header), then the
// data padded to a multiple of 4.
const (
	newcMagic      = "070701"
	newcHeaderSize = 110
	trailerName    = "TRAILER!!!"
	maxNameSize    = 4096
)

// Mode bits of the cpio mode field (the same values as stat's st_mode).
const (
	ModeDir      uint32 = 0o040000
	ModeRegular  uint32 = 0o100000
	ModeSymlink  uint32 = 0o120000
	ModeCharDev  uint32 = 0o020000
	ModeBlkDev   uint32 = 0o060000
	ModeFIFO     uint32 = 0o010000
	ModeTypeMask uint32 = 0o170000
)

// Header is one cpio entry's metadata. Name has no leading slash.
type Header struct {
	Name      string
	Ino       uint32
	Mode      uint32 // type bits | permission bits
	UID, GID  uint32
	Nlink     uint32
	Mtime     uint32
	Size      uint32
	DevMajor  uint32
	DevMinor  uint32
	RdevMajor uint32
	RdevMinor uint32
}

// Writer writes a newc archive. Call WriteHeader, then write exactly
// Header.Size bytes, for each entry, and Close to add the trailer.
type Writer struct {
	w       io.Writer
	off     int64
	pending int64 // data bytes still owed for the current entry
	pad     int64 // padding owed after the current entry's data
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func pad4(n int64) int64 { return (4 - n%4) % 4 }

var zeros [4]byte

func (cw *Writer) raw(b []byte) error {
	n, err := cw.w.Write(b)
	cw.off += int64(n)
	if err != nil {
		return fmt.Errorf("cpio write: %w", err)
	}
	return nil
}

func (cw *Writer) finishEntry() error {
	if cw.pending != 0 {
		return fmt.Errorf("%w: %d bytes missing", ErrSizeMismatch, cw.pending)
	}
	if cw.pad > 0 {
		if err := cw.raw(zeros[:cw.pad]); err != nil {
			return err
		}
		cw.pad = 0
	}
	return nil
}

// WriteHeader starts a new entry.
func (cw *Writer) WriteHeader(h *Header) error {
	if err := cw.finishEntry(); err != nil {
		return err
	}
	if len(h.Name)+1 > maxNameSize {
		return fmt.Errorf("%w: %q", ErrNameTooLong, h.Name)
	}
	fields := []uint32{h.Ino, h.Mode, h.UID, h.GID, h.Nlink, h.Mtime, h.Size,
		h.DevMajor, h.DevMinor, h.RdevMajor, h.RdevMinor, uint32(len(h.Name) + 1), 0}
	buf := make([]byte, 0, newcHeaderSize+len(h.Name)+4)
	buf = append(buf, newcMagic...)
	for _, f := range fields {
		buf = fmt.Appendf(buf, "%08X", f)
	}
	buf = append(buf, h.Name...)
	buf = append(buf, 0)
	buf = append(buf, zeros[:pad4(int64(len(buf)))]...)
	if err := cw.raw(buf); err != nil {
		return err
	}
	cw.pending = int64(h.Size)
	cw.pad = pad4(int64(h.Size))
	return nil
}

// Write writes entry data; it refuses more than the header announced.
func (cw *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > cw.pending {
		return 0, fmt.Errorf("%w: %d bytes too many", ErrSizeMismatch, int64(len(p))-cw.pending)
	}
	n, err := cw.w.Write(p)
	cw.off += int64(n)
	cw.pending -= int64(n)
	if err != nil {
		return n, fmt.Errorf("cpio write: %w", err)
	}
	return n, nil
}

// Close writes the trailer. It does not close the underlying writer.
func (cw *Writer) Close() error {
	if err := cw.WriteHeader(&Header{Name: trailerName, Nlink: 1}); err != nil {
		return err
	}
	return cw.finishEntry()
}

// Reader reads a newc archive entry by entry.
type Reader struct {
	r      *bufio.Reader
	off    int64
	remain int64
	pad    int64
	done   bool
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

func (cr *Reader) skip(n int64) error {
	m, err := io.CopyN(io.Discard, cr.r, n)
	cr.off += m
	if err != nil {
		return fmt.Errorf("cpio read at %d: %w", cr.off, noEOF(err))
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Next advances to the next entry; it returns io.EOF after the trailer.
func (cr *Reader) Next() (*Header, error) {
	if cr.done {
		return nil, io.EOF
	}
	if err := cr.skip(cr.remain + cr.pad); err != nil {
		return nil, err
	}
	cr.remain, cr.pad = 0, 0
	var hb [newcHeaderSize]byte
	n, err := io.ReadFull(cr.r, hb[:])
	cr.off += int64(n)
	if err != nil {
		if err == io.EOF {
			return nil, ErrNoTrailer
		}
		return nil, fmt.Errorf("cpio header at %d: %w", cr.off, noEOF(err))
	}
	if string(hb[:6]) != newcMagic {
		return nil, fmt.Errorf("%w at offset %d", ErrBadMagic, cr.off-newcHeaderSize)
	}
	var f [13]uint32
	for i := range f {
		s := string(hb[6+8*i : 14+8*i])
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: field %d %q", ErrBadHeader, i, s)
		}
		f[i] = uint32(v)
	}
	nameSize := int64(f[11])
	if nameSize < 1 || nameSize > maxNameSize {
		return nil, fmt.Errorf("%w: name size %d", ErrBadHeader, nameSize)
	}
	nb := make([]byte, nameSize)
	n, err = io.ReadFull(cr.r, nb)
	cr.off += int64(n)
	if err != nil {
		return nil, fmt.Errorf("cpio name: %w", noEOF(err))
	}
	if nb[nameSize-1] != 0 {
		return nil, fmt.Errorf("%w: name not NUL-terminated", ErrBadHeader)
	}
	if err := cr.skip(pad4(newcHeaderSize + nameSize)); err != nil {
		return nil, err
	}
	h := &Header{
		Name: string(nb[:nameSize-1]), Ino: f[0], Mode: f[1], UID: f[2], GID: f[3],
		Nlink: f[4], Mtime: f[5], Size: f[6], DevMajor: f[7], DevMinor: f[8],
		RdevMajor: f[9], RdevMinor: f[10],
	}
	if h.Name == trailerName {
		cr.done = true
		return nil, io.EOF
	}
	cr.remain = int64(h.Size)
	cr.pad = pad4(int64(h.Size))
	return h, nil
}

// Read reads the current entry's data.
func (cr *Reader) Read(p []byte) (int, error) {
	if cr.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > cr.remain {
		p = p[:cr.remain]
	}
	n, err := cr.r.Read(p)
	cr.off += int64(n)
	cr.remain -= int64(n)
	if err == io.EOF && cr.remain > 0 {
		return n, io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
