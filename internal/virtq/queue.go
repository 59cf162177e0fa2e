package virtq

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"
)

// Memory gives access to guest-physical memory.
type Memory interface {
	// Slice returns the n bytes at addr, or an error when they are not
	// all guest memory.
	Slice(addr, n uint64) ([]byte, error)
}

// Descriptor flags.
const (
	DescNext     = 1
	DescWrite    = 2
	DescIndirect = 4

	availNoInterrupt = 1
	descSize         = 16
	// MaxSize is the largest ring size the specification allows.
	MaxSize = 1 << 15
)

// Chain is one descriptor chain: the buffers the device reads, then the
// buffers it writes. The slices alias guest memory and are valid until
// the memory is unmapped.
type Chain struct {
	Head     uint16
	Readable [][]byte
	Writable [][]byte
}

// ReadableLen is the total length of the readable buffers.
func (c *Chain) ReadableLen() int { return buffersLen(c.Readable) }

// WritableLen is the total length of the writable buffers.
func (c *Chain) WritableLen() int { return buffersLen(c.Writable) }

func buffersLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

// Gather copies the readable bytes from offset off into p and returns how
// many it copied.
func (c *Chain) Gather(p []byte, off int) int {
	n := 0
	for _, b := range c.Readable {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		n += copy(p[n:], b[off:])
		off = 0
		if n == len(p) {
			break
		}
	}
	return n
}

// Scatter copies p into the writable buffers from offset off and returns
// how many bytes it wrote.
func (c *Chain) Scatter(p []byte, off int) int {
	n := 0
	for _, b := range c.Writable {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		n += copy(b[off:], p[n:])
		off = 0
		if n == len(p) {
			break
		}
	}
	return n
}

// Config locates a ring in guest memory.
type Config struct {
	Size      uint16
	Desc      uint64
	Avail     uint64
	Used      uint64
	NextAvail uint16
}

// Queue is the device's view of one split virtqueue. It is not safe for
// concurrent use.
type Queue struct {
	size      uint16
	desc      []byte
	avail     []byte // flags, idx, ring[size]
	used      []byte // flags, idx, ring[size] of {id, len}
	nextAvail uint16
	nextUsed  uint16
	call      *os.File
	mem       Memory
	cfg       Config
	// MaxChainLen caps the bytes of one chain (readable plus writable).
	MaxChainLen int
}

// New maps the ring described by cfg.
func New(mem Memory, cfg Config) (*Queue, error) {
	n := uint64(cfg.Size)
	if n == 0 || n > MaxSize || n&(n-1) != 0 {
		return nil, fmt.Errorf("size %d: %w", n, ErrBadQueue)
	}
	if cfg.Desc%16 != 0 || cfg.Avail%2 != 0 || cfg.Used%4 != 0 {
		return nil, fmt.Errorf("misaligned ring desc=%#x avail=%#x used=%#x: %w", cfg.Desc, cfg.Avail, cfg.Used, ErrBadQueue)
	}
	q := &Queue{size: cfg.Size, nextAvail: cfg.NextAvail, MaxChainLen: 1 << 20, cfg: cfg}
	if err := q.Remap(mem); err != nil {
		return nil, err
	}
	q.nextUsed = load16(q.used[2:])
	return q, nil
}

// Remap points the queue at a new memory table (same guest addresses).
func (q *Queue) Remap(mem Memory) error {
	cfg, n := q.cfg, uint64(q.cfg.Size)
	desc, err := mem.Slice(cfg.Desc, descSize*n)
	if err != nil {
		return fmt.Errorf("descriptor table: %w", err)
	}
	avail, err := mem.Slice(cfg.Avail, 4+2*n)
	if err != nil {
		return fmt.Errorf("available ring: %w", err)
	}
	used, err := mem.Slice(cfg.Used, 4+8*n)
	if err != nil {
		return fmt.Errorf("used ring: %w", err)
	}
	q.mem, q.desc, q.avail, q.used = mem, desc, avail, used
	return nil
}

func (q *Queue) slice(addr, n uint64) ([]byte, error) { return q.mem.Slice(addr, n) }

// NextAvail is the index of the next available entry the device will take
// (what GET_VRING_BASE reports).
func (q *Queue) NextAvail() uint16 { return q.nextAvail }

// SetCall sets the eventfd that interrupts the driver (nil: none).
func (q *Queue) SetCall(f *os.File) { q.call = f }

// load16 and store16 access ring fields shared with the guest; the
// atomics keep the compiler from caching or reordering them.
func load16(b []byte) uint16 {
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%4 == 0 {
		return uint16(atomic.LoadUint32((*uint32)(p)))
	}
	return loadUnaligned16(p)
}

// loadUnaligned16 is not inlined, so the load happens on every call; x86
// keeps loads ordered.
//
//go:noinline
func loadUnaligned16(p unsafe.Pointer) uint16 { return *(*uint16)(p) }

// Pending reports whether the driver made chains available that the
// device has not taken.
func (q *Queue) Pending() bool { return load16(q.avail[2:]) != q.nextAvail }

// Pop takes the next available chain. It returns nil, nil when none is
// available. A chain the device refuses is returned to the driver as used
// with length 0 (when its head is valid) and reported as an error.
func (q *Queue) Pop() (*Chain, error) {
	if !q.Pending() {
		return nil, nil
	}
	if int16(load16(q.avail[2:])-q.nextAvail) < 0 || load16(q.avail[2:])-q.nextAvail > q.size {
		// More entries than the ring holds: the index is garbage. Catch up.
		idx := load16(q.avail[2:])
		q.nextAvail = idx
		return nil, fmt.Errorf("available index %d jumped beyond ring size %d: %w", idx, q.size, ErrBadDescriptor)
	}
	slot := uint64(q.nextAvail % q.size)
	head := binary.LittleEndian.Uint16(q.avail[4+2*slot:])
	q.nextAvail++
	if head >= q.size {
		return nil, fmt.Errorf("head %d of ring size %d: %w", head, q.size, ErrBadDescriptor)
	}
	c, err := q.walk(head)
	if err != nil {
		q.Push(head, 0)
		return nil, err
	}
	return c, nil
}

func (q *Queue) walk(head uint16) (*Chain, error) {
	c := &Chain{Head: head}
	i := head
	total := 0
	for n := 0; ; n++ {
		if n >= int(q.size) {
			return nil, fmt.Errorf("chain from %d longer than the ring (loop?): %w", head, ErrBadDescriptor)
		}
		d := q.desc[descSize*int(i):]
		addr := binary.LittleEndian.Uint64(d)
		ln := binary.LittleEndian.Uint32(d[8:])
		flags := binary.LittleEndian.Uint16(d[12:])
		next := binary.LittleEndian.Uint16(d[14:])
		if flags&DescIndirect != 0 {
			return nil, fmt.Errorf("descriptor %d: indirect descriptors not negotiated: %w", i, ErrBadDescriptor)
		}
		total += int(ln)
		if total > q.MaxChainLen {
			return nil, fmt.Errorf("chain from %d longer than %d bytes: %w", head, q.MaxChainLen, ErrBadDescriptor)
		}
		buf, err := q.slice(addr, uint64(ln))
		if err != nil {
			return nil, fmt.Errorf("descriptor %d: %v: %w", i, err, ErrBadDescriptor)
		}
		if flags&DescWrite != 0 {
			c.Writable = append(c.Writable, buf)
		} else {
			if len(c.Writable) > 0 {
				return nil, fmt.Errorf("descriptor %d: readable after writable: %w", i, ErrBadDescriptor)
			}
			c.Readable = append(c.Readable, buf)
		}
		if flags&DescNext == 0 {
			return c, nil
		}
		if next >= q.size {
			return nil, fmt.Errorf("descriptor %d: next %d of ring size %d: %w", i, next, q.size, ErrBadDescriptor)
		}
		i = next
	}
}

// Push returns chain head to the driver with written bytes written.
func (q *Queue) Push(head uint16, written uint32) {
	slot := uint64(q.nextUsed % q.size)
	e := q.used[4+8*slot:]
	binary.LittleEndian.PutUint32(e, uint32(head))
	binary.LittleEndian.PutUint32(e[4:], written)
	q.nextUsed++
	// used.flags (always 0: notifications wanted) and used.idx as one
	// atomic store, which also orders the entry before the index.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&q.used[0])), uint32(q.nextUsed)<<16)
}

// Notify interrupts the driver unless it asked not to be.
func (q *Queue) Notify() error {
	if q.call == nil || load16(q.avail[0:])&availNoInterrupt != 0 {
		return nil
	}
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	if _, err := q.call.Write(one[:]); err != nil {
		return fmt.Errorf("call eventfd: %w", err)
	}
	return nil
}
