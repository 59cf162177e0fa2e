package virtq_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/opengcs/opengcs/internal/virtq"
)

// flatMemory is guest memory as one byte slice at guest address base.
type flatMemory struct {
	base uint64
	b    []byte
}

func (m flatMemory) Slice(addr, n uint64) ([]byte, error) {
	if addr < m.base || addr-m.base > uint64(len(m.b)) || n > uint64(len(m.b))-(addr-m.base) {
		return nil, fmt.Errorf("%#x+%d outside", addr, n)
	}
	o := addr - m.base
	return m.b[o : o+n : o+n], nil
}

const (
	base  = 0x10000
	size  = 8
	desc  = base
	avail = base + 0x100
	used  = base + 0x200
	bufs  = base + 0x400
)

func newQueue(t testing.TB) (flatMemory, *virtq.Queue) {
	m := flatMemory{base: base, b: make([]byte, 0x2000)}
	q, err := virtq.New(m, virtq.Config{Size: size, Desc: desc, Avail: avail, Used: used})
	if err != nil {
		t.Fatal(err)
	}
	return m, q
}

func (m flatMemory) setDesc(i int, addr uint64, n uint32, flags, next uint16) {
	d := m.b[desc-base+16*i:]
	binary.LittleEndian.PutUint64(d, addr)
	binary.LittleEndian.PutUint32(d[8:], n)
	binary.LittleEndian.PutUint16(d[12:], flags)
	binary.LittleEndian.PutUint16(d[14:], next)
}

func (m flatMemory) offer(idx uint16, head uint16) {
	binary.LittleEndian.PutUint16(m.b[avail-base+4+2*int(idx%size):], head)
	binary.LittleEndian.PutUint16(m.b[avail-base+2:], idx+1)
}

func TestPop(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(m flatMemory)
		head     uint16
		r, w     int // readable and writable bytes of a good chain
		bad      bool
		returned bool // a refused chain goes back to the used ring
	}{
		{"read then write", func(m flatMemory) {
			m.setDesc(0, bufs, 44, virtq.DescNext, 1)
			m.setDesc(1, bufs+64, 100, virtq.DescWrite, 0)
		}, 0, 44, 100, false, false},
		{"outside memory", func(m flatMemory) { m.setDesc(0, 0x10, 44, 0, 0) }, 0, 0, 0, true, true},
		{"past the end", func(m flatMemory) { m.setDesc(0, base+0x1ff0, 0x20, 0, 0) }, 0, 0, 0, true, true},
		{"loop", func(m flatMemory) { m.setDesc(0, bufs, 1, virtq.DescNext, 0) }, 0, 0, 0, true, true},
		{"next out of ring", func(m flatMemory) { m.setDesc(0, bufs, 1, virtq.DescNext, 9) }, 0, 0, 0, true, true},
		{"indirect", func(m flatMemory) { m.setDesc(0, bufs, 16, virtq.DescIndirect, 0) }, 0, 0, 0, true, true},
		{"read after write", func(m flatMemory) {
			m.setDesc(0, bufs, 4, virtq.DescWrite|virtq.DescNext, 1)
			m.setDesc(1, bufs, 4, 0, 0)
		}, 0, 0, 0, true, true},
		{"head out of ring", func(flatMemory) {}, 200, 0, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, q := newQueue(t)
			tc.setup(m)
			m.offer(0, tc.head)
			c, err := q.Pop()
			if tc.bad {
				if !errors.Is(err, virtq.ErrBadDescriptor) || c != nil {
					t.Fatalf("Pop = %v, %v; want ErrBadDescriptor", c, err)
				}
			} else if err != nil || c.ReadableLen() != tc.r || c.WritableLen() != tc.w {
				t.Fatalf("Pop = %+v, %v", c, err)
			}
			if q.NextAvail() != 1 {
				t.Fatalf("next avail %d, want 1", q.NextAvail())
			}
			usedIdx := binary.LittleEndian.Uint16(m.b[used-base+2:])
			if want := uint16(0); tc.returned {
				want = 1
				if usedIdx != want {
					t.Fatalf("used idx %d, want %d", usedIdx, want)
				}
			}
			if c, err := q.Pop(); c != nil || err != nil {
				t.Fatalf("second Pop on an empty ring = %v, %v", c, err)
			}
		})
	}
}

func TestScatterGatherAndPush(t *testing.T) {
	m, q := newQueue(t)
	m.setDesc(0, bufs, 3, virtq.DescNext, 1)
	m.setDesc(1, bufs+16, 5, virtq.DescNext, 2)
	m.setDesc(2, bufs+32, 4, virtq.DescWrite|virtq.DescNext, 3)
	m.setDesc(3, bufs+48, 4, virtq.DescWrite, 0)
	copy(m.b[bufs-base:], "abc")
	copy(m.b[bufs-base+16:], "defgh")
	m.offer(0, 0)
	c, err := q.Pop()
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 6)
	if n := c.Gather(p, 2); n != 6 || string(p) != "cdefgh" {
		t.Fatalf("Gather = %d %q", n, p)
	}
	if n := c.Scatter([]byte("1234567"), 1); n != 7 {
		t.Fatalf("Scatter wrote %d", n)
	}
	if got := string(m.b[bufs-base+33:bufs-base+36]) + string(m.b[bufs-base+48:bufs-base+52]); got != "1234567" {
		t.Fatalf("scattered %q", got)
	}
	q.Push(c.Head, 8)
	if binary.LittleEndian.Uint16(m.b[used-base+2:]) != 1 || binary.LittleEndian.Uint32(m.b[used-base+8:]) != 8 {
		t.Fatal("used ring not updated")
	}
}

func TestNewRejectsBadRings(t *testing.T) {
	m := flatMemory{base: base, b: make([]byte, 0x2000)}
	for _, cfg := range []virtq.Config{
		{Size: 0, Desc: desc, Avail: avail, Used: used},
		{Size: 3, Desc: desc, Avail: avail, Used: used},
		{Size: 8, Desc: desc + 8, Avail: avail, Used: used},
		{Size: 8, Desc: desc, Avail: avail, Used: used + 2},
		{Size: 8, Desc: 0x10, Avail: avail, Used: used},
		{Size: 1024, Desc: desc, Avail: avail, Used: used},
	} {
		if _, err := virtq.New(m, cfg); !errors.Is(err, virtq.ErrBadQueue) && err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// FuzzPop: whatever the guest wrote in the descriptor table and the
// available ring, Pop returns a chain inside guest memory or an error.
func FuzzPop(f *testing.F) {
	good := make([]byte, 16*size+4+2*size)
	binary.LittleEndian.PutUint64(good, bufs)
	binary.LittleEndian.PutUint32(good[8:], 44)
	binary.LittleEndian.PutUint16(good[16*size+2:], 1)
	f.Add(good)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, q := newQueue(t)
		copy(m.b[desc-base:desc-base+16*size], in)
		if len(in) > 16*size {
			copy(m.b[avail-base:avail-base+4+2*size], in[16*size:])
		}
		for i := 0; i < 2*size; i++ {
			c, err := q.Pop()
			if err != nil {
				continue
			}
			if c == nil {
				return
			}
			if c.ReadableLen()+c.WritableLen() > q.MaxChainLen {
				t.Fatalf("chain of %d bytes", c.ReadableLen()+c.WritableLen())
			}
			q.Push(c.Head, 0)
		}
	})
}
