package vsockdev_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/opengcs/opengcs/internal/vsockdev"
)

// gconn is a guest stream socket.
type gconn struct {
	f            *front
	local        uint32 // guest port
	remote       uint32 // host port
	open, reset  bool
	closed       bool // the guest app closed it
	rbuf         bytes.Buffer
	bufAlloc     uint32
	rxCnt        uint32
	fwdCnt       uint32
	lastFwdSent  uint32
	peerBufAlloc uint32
	peerFwdCnt   uint32
	txCnt        uint32
	peerShut     uint32
	stalls       int // writes that waited for credit
	result       chan error
}

const guestBufAlloc = 64 << 10

func (f *front) newConnLocked(local, remote uint32) *gconn {
	c := &gconn{f: f, local: local, remote: remote, bufAlloc: guestBufAlloc, result: make(chan error, 1)}
	f.conns[[2]uint32{local, remote}] = c
	return c
}

func (c *gconn) hdr(op uint16, flags uint32) vsockdev.Header {
	return vsockdev.Header{SrcPort: c.local, DstPort: c.remote, Op: op, Flags: flags,
		BufAlloc: c.bufAlloc, FwdCnt: c.fwdCnt}
}

func (c *gconn) sendLocked(op uint16, flags uint32, data []byte) {
	c.f.sendConnLocked(c.hdr(op, flags), data, c)
}

// guestReceive is the guest stack's receive path.
func (f *front) guestReceive(h vsockdev.Header, data []byte) {
	if h.SrcCID != vsockdev.HostCID || h.DstCID != guestCID || h.Type != vsockdev.TypeStream {
		f.violations = append(f.violations, fmt.Sprintf("bad addresses %+v", h))
		return
	}
	c := f.conns[[2]uint32{h.DstPort, h.SrcPort}]
	if c == nil {
		switch h.Op {
		case vsockdev.OpRequest:
			l := f.listeners[h.DstPort]
			if l == nil {
				f.sendLocked(vsockdev.Header{SrcPort: h.DstPort, DstPort: h.SrcPort, Op: vsockdev.OpRst}, nil)
				return
			}
			c = f.newConnLocked(h.DstPort, h.SrcPort)
			c.open = true
			c.peerBufAlloc, c.peerFwdCnt = h.BufAlloc, h.FwdCnt
			c.sendLocked(vsockdev.OpResponse, 0, nil)
			l <- c
		case vsockdev.OpRst:
			f.rsts = append(f.rsts, h)
		default:
			f.sendLocked(vsockdev.Header{SrcPort: h.DstPort, DstPort: h.SrcPort, Op: vsockdev.OpRst}, nil)
		}
		f.cond.Broadcast()
		return
	}
	c.peerBufAlloc, c.peerFwdCnt = h.BufAlloc, h.FwdCnt
	switch h.Op {
	case vsockdev.OpResponse:
		c.open = true
		c.result <- nil
	case vsockdev.OpRW:
		c.rxCnt += h.Len
		c.rbuf.Write(data)
		if uint32(c.rbuf.Len()) > c.bufAlloc {
			f.violations = append(f.violations, fmt.Sprintf("port %d: device sent beyond credit: %d buffered of %d", c.local, c.rbuf.Len(), c.bufAlloc))
		}
	case vsockdev.OpShutdown:
		c.peerShut |= h.Flags
		if c.peerShut == vsockdev.ShutdownRcv|vsockdev.ShutdownSend && c.rbuf.Len() == 0 {
			c.sendLocked(vsockdev.OpRst, 0, nil)
			c.reset = true
			delete(f.conns, [2]uint32{c.local, c.remote})
		}
	case vsockdev.OpRst:
		if !c.open {
			c.result <- fmt.Errorf("port %d: connection refused", c.remote)
		}
		c.reset = true
		delete(f.conns, [2]uint32{c.local, c.remote})
	case vsockdev.OpCreditRequest:
		c.sendLocked(vsockdev.OpCreditUpdate, 0, nil)
	}
	f.cond.Broadcast()
}

// listen makes the guest accept connections on port.
func (f *front) listen(port uint32) chan *gconn {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan *gconn, 128)
	f.listeners[port] = ch
	return ch
}

// connect opens a guest connection to host port.
func (f *front) connect(port uint32) (*gconn, error) {
	f.mu.Lock()
	f.nextPort++
	c := f.newConnLocked(f.nextPort, port)
	c.sendLocked(vsockdev.OpRequest, 0, nil)
	f.mu.Unlock()
	if err := <-c.result; err != nil {
		return nil, err
	}
	return c, nil
}

func (c *gconn) Read(p []byte) (int, error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for c.rbuf.Len() == 0 && !c.reset && c.peerShut&vsockdev.ShutdownSend == 0 {
		f.cond.Wait()
	}
	if c.rbuf.Len() == 0 {
		if c.reset && c.peerShut&vsockdev.ShutdownSend == 0 {
			return 0, fmt.Errorf("port %d: connection reset", c.remote)
		}
		return 0, io.EOF
	}
	n, _ := c.rbuf.Read(p)
	c.fwdCnt += uint32(n)
	if c.bufAlloc-(c.rxCnt-c.lastFwdSent) < c.bufAlloc/2 && !c.reset {
		c.sendLocked(vsockdev.OpCreditUpdate, 0, nil)
	}
	return n, nil
}

func (c *gconn) credit() uint32 {
	used := c.txCnt - c.peerFwdCnt
	if used >= c.peerBufAlloc {
		return 0
	}
	return c.peerBufAlloc - used
}

func (c *gconn) Write(p []byte) (int, error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for n < len(p) {
		if c.credit() == 0 && !c.reset {
			c.stalls++
		}
		for c.credit() == 0 && !c.reset {
			f.cond.Wait()
		}
		if c.reset || c.peerShut&vsockdev.ShutdownRcv != 0 {
			return n, fmt.Errorf("port %d: connection reset", c.remote)
		}
		m := min(len(p)-n, bufSize, int(c.credit()))
		c.txCnt += uint32(m)
		c.sendLocked(vsockdev.OpRW, 0, p[n:n+m])
		n += m
	}
	return n, nil
}

// CloseWrite sends SHUTDOWN(SEND).
func (c *gconn) CloseWrite() {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.sendLocked(vsockdev.OpShutdown, vsockdev.ShutdownSend, nil)
}

// Close sends SHUTDOWN(RCV|SEND) and waits for the device's RST, as
// Linux does.
func (c *gconn) Close() error {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.reset {
		return nil
	}
	c.sendLocked(vsockdev.OpShutdown, vsockdev.ShutdownRcv|vsockdev.ShutdownSend, nil)
	for !c.reset {
		f.cond.Wait()
	}
	return nil
}

// Stalls reports how many writes waited for credit.
func (c *gconn) Stalls() int {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.stalls
}
