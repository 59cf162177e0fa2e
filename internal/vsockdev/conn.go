package vsockdev

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// connKey identifies a connection by its host-side and guest-side ports.
type connKey struct {
	host  uint32
	guest uint32
}

// packet is one packet queued for the guest. For a connection's packets
// the credit fields are filled in when it is written.
type packet struct {
	conn *conn
	hdr  Header
	data []byte
}

type connState int

const (
	stateDialing   connState = iota // guest asked, host socket being dialled
	stateRequested                  // host asked, waiting for the guest's RESPONSE
	stateOpen
)

// conn is one stream connection. All fields are guarded by Device.mu.
type conn struct {
	key   connKey
	host  *net.UnixConn
	state connState
	cond  *sync.Cond
	log   *logrus.Entry
	// okLine is written to a host-initiated connection once the guest
	// accepted.
	okLine string

	// host to guest
	peerBufAlloc uint32
	peerFwdCnt   uint32
	txCnt        uint32 // payload bytes queued for the guest
	hostEOF      bool

	// guest to host
	wq           net.Buffers
	rxCnt        uint32 // payload bytes received from the guest
	fwdCnt       uint32 // of those, written to the host socket
	lastFwdSent  uint32 // fwdCnt last told to the guest
	creditQueued bool
	guestShut    uint32 // shutdown flags received
	writerDone   bool

	closed      bool
	dropPending bool
}

func (c *conn) peerCredit() uint32 {
	used := c.txCnt - c.peerFwdCnt
	if used >= c.peerBufAlloc {
		return 0
	}
	return c.peerBufAlloc - used
}

func (d *Device) newConnLocked(key connKey, state connState) *conn {
	c := &conn{key: key, state: state, cond: sync.NewCond(&d.mu),
		log: d.log.WithFields(logrus.Fields{"host_port": key.host, "guest_port": key.guest})}
	d.conns[key] = c
	return c
}

// queueLocked queues a packet of connection c for the guest.
func (d *Device) queueLocked(c *conn, op uint16, flags uint32, data []byte) {
	d.pending = append(d.pending, &packet{conn: c, data: data, hdr: Header{
		SrcCID: HostCID, DstCID: d.opts.CID, SrcPort: c.key.host, DstPort: c.key.guest,
		Type: TypeStream, Op: op, Flags: flags,
	}})
}

// closeLocked ends c: its host socket is closed and its goroutines stop.
// rst sends the guest a reset (after any data already queued unless drop).
func (d *Device) closeLocked(c *conn, rst, drop bool) {
	if c.closed {
		return
	}
	c.closed = true
	c.dropPending = drop
	if d.conns[c.key] == c {
		delete(d.conns, c.key)
	}
	if c.host != nil {
		c.host.Close()
	}
	c.cond.Broadcast()
	if rst {
		d.pending = append(d.pending, &packet{hdr: Header{SrcCID: HostCID, DstCID: d.opts.CID,
			SrcPort: c.key.host, DstPort: c.key.guest, Type: TypeStream, Op: OpRst}})
	}
	c.log.WithField("rst", rst).Debug("vsock: connection closed")
}

// dispatchLocked acts on one packet from the guest.
func (d *Device) dispatchLocked(h Header, payload []byte, log *logrus.Entry) {
	if h.SrcCID != d.opts.CID || h.DstCID != HostCID {
		log.WithFields(logrus.Fields{"src_cid": h.SrcCID, "dst_cid": h.DstCID}).Warn("vsock: packet with foreign addresses dropped")
		return
	}
	if h.Type != TypeStream {
		log.WithField("type", h.Type).Warn("vsock: unsupported socket type; reset")
		d.replyRstLocked(h)
		return
	}
	key := connKey{host: h.DstPort, guest: h.SrcPort}
	c := d.conns[key]
	if c != nil {
		c.peerBufAlloc = h.BufAlloc
		// fwd_cnt only grows (modulo 2^32); a stale one is ignored.
		if int32(h.FwdCnt-c.peerFwdCnt) > 0 {
			c.peerFwdCnt = h.FwdCnt
		}
		c.cond.Broadcast()
	}
	switch h.Op {
	case OpRequest:
		if c != nil {
			log.Warn("vsock: REQUEST for an existing connection; reset")
			d.replyRstLocked(h)
			return
		}
		if d.closed || d.opts.UDSPrefix == "" {
			d.replyRstLocked(h)
			return
		}
		c = d.newConnLocked(key, stateDialing)
		c.peerBufAlloc, c.peerFwdCnt = h.BufAlloc, h.FwdCnt
		d.wg.Add(1)
		go d.dial(c)
	case OpResponse:
		if c == nil || c.state != stateRequested {
			log.Warn("vsock: unexpected RESPONSE; reset")
			d.replyRstLocked(h)
			return
		}
		c.state = stateOpen
		c.okLine = FormatOK(c.key.host)
		d.startPumpsLocked(c)
	case OpRW:
		if c == nil || c.state != stateOpen || c.guestShut&ShutdownSend != 0 {
			log.Debug("vsock: RW for no open connection; reset")
			d.replyRstLocked(h)
			return
		}
		if c.rxCnt-c.fwdCnt+h.Len > d.opts.BufAlloc {
			log.WithField("len", h.Len).Warn("vsock: guest sent beyond its credit; reset")
			d.closeLocked(c, true, true)
			return
		}
		if len(payload) > 0 {
			c.wq = append(c.wq, payload)
			c.rxCnt += h.Len
			c.cond.Broadcast()
		}
	case OpCreditUpdate:
	case OpCreditRequest:
		if c != nil {
			d.creditUpdateLocked(c)
		}
	case OpShutdown:
		if c == nil {
			d.replyRstLocked(h)
			return
		}
		c.guestShut |= h.Flags & (ShutdownRcv | ShutdownSend)
		if c.guestShut&ShutdownRcv != 0 && c.host != nil {
			c.host.CloseRead()
		}
		c.cond.Broadcast()
		if c.state == stateRequested {
			d.closeLocked(c, true, true)
		}
	case OpRst:
		if c != nil {
			d.closeLocked(c, false, true)
		}
	default:
		log.Warn("vsock: unknown operation; reset")
		d.replyRstLocked(h)
	}
}

func (d *Device) creditUpdateLocked(c *conn) {
	if !c.creditQueued {
		c.creditQueued = true
		d.queueLocked(c, OpCreditUpdate, 0, nil)
	}
}

// dial connects a guest-initiated connection to <prefix>_<port>.
func (d *Device) dial(c *conn) {
	defer d.wg.Done()
	path := fmt.Sprintf("%s_%d", d.opts.UDSPrefix, c.key.host)
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		c.log.WithError(err).Debug("vsock: no host listener; reset")
		d.closeLocked(c, true, true)
		d.flushRxLocked()
		return
	}
	if c.closed {
		nc.Close()
		return
	}
	c.host = nc.(*net.UnixConn)
	c.state = stateOpen
	d.queueLocked(c, OpResponse, 0, nil)
	d.startPumpsLocked(c)
	d.flushRxLocked()
}

func (d *Device) startPumpsLocked(c *conn) {
	c.log.Debug("vsock: connection open")
	d.wg.Add(2)
	go d.hostReader(c)
	go d.hostWriter(c)
}

// hostReader moves host socket data to the guest, never more than the
// guest's advertised credit.
func (d *Device) hostReader(c *conn) {
	defer d.wg.Done()
	buf := make([]byte, readChunk)
	for {
		d.mu.Lock()
		for !c.closed && c.guestShut&ShutdownRcv == 0 && c.peerCredit() == 0 {
			c.cond.Wait()
		}
		if c.closed || c.guestShut&ShutdownRcv != 0 {
			d.mu.Unlock()
			return
		}
		n := min(int(c.peerCredit()), len(buf))
		d.mu.Unlock()

		m, err := c.host.Read(buf[:n])

		d.mu.Lock()
		if c.closed {
			d.mu.Unlock()
			return
		}
		if m > 0 {
			d.queueLocked(c, OpRW, 0, append([]byte(nil), buf[:m]...))
			c.txCnt += uint32(m)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				c.hostEOF = true
				d.queueLocked(c, OpShutdown, ShutdownSend, nil)
				if c.writerDone {
					d.closeLocked(c, true, false)
				}
			} else {
				c.log.WithError(err).Debug("vsock: host read failed; reset")
				d.closeLocked(c, true, false)
			}
		}
		d.flushRxLocked()
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// hostWriter writes the guest's data to the host socket and returns
// credit as it goes.
func (d *Device) hostWriter(c *conn) {
	defer d.wg.Done()
	d.mu.Lock()
	ok := c.okLine
	d.mu.Unlock()
	if ok != "" {
		if _, err := io.WriteString(c.host, ok); err != nil {
			d.mu.Lock()
			d.closeLocked(c, true, true)
			d.flushRxLocked()
			d.mu.Unlock()
			return
		}
	}
	for {
		d.mu.Lock()
		for !c.closed && len(c.wq) == 0 && c.guestShut&ShutdownSend == 0 {
			c.cond.Wait()
		}
		if c.closed {
			d.mu.Unlock()
			return
		}
		if len(c.wq) == 0 {
			// The guest will send no more and everything is written.
			c.writerDone = true
			if c.guestShut&ShutdownRcv != 0 || c.hostEOF {
				d.closeLocked(c, true, false)
				d.flushRxLocked()
			} else {
				c.host.CloseWrite()
			}
			d.mu.Unlock()
			return
		}
		bufs := c.wq
		c.wq = nil
		d.mu.Unlock()

		n, err := bufs.WriteTo(c.host)

		d.mu.Lock()
		if c.closed {
			d.mu.Unlock()
			return
		}
		c.fwdCnt += uint32(n)
		if err != nil {
			c.log.WithError(err).Debug("vsock: host write failed; reset")
			d.closeLocked(c, true, true)
		} else if d.opts.BufAlloc-(c.rxCnt-c.lastFwdSent) < min(creditThreshold, d.opts.BufAlloc/2) {
			d.creditUpdateLocked(c)
		}
		d.flushRxLocked()
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}
