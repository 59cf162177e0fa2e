package vsockdev

import (
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/vhostuser"
	"github.com/opengcs/opengcs/internal/virtq"
)

// Ring indexes. The event queue (2) stays in QEMU for vhost-user-vsock.
const (
	RxQueue   = 0
	TxQueue   = 1
	numQueues = 2
)

const (
	// DefaultBufAlloc is the receive buffer each connection advertises.
	DefaultBufAlloc = 256 << 10
	// MaxPacketPayload is the largest payload accepted from the guest
	// (Linux never sends more than 64 KiB in one packet).
	MaxPacketPayload = 64 << 10
	// creditThreshold: a credit update is sent once the guest's view of
	// our free buffer falls below it.
	creditThreshold = 64 << 10
	readChunk       = 64 << 10
	// firstHostPort is where ports for host-initiated connections start.
	firstHostPort = 1 << 30
)

// Options configure a Device.
type Options struct {
	// CID is the guest's context id, reported in the config space.
	CID uint64
	// UDSPrefix is the hybrid-vsock unix socket prefix.
	UDSPrefix string
	// BufAlloc is the per-connection receive buffer (DefaultBufAlloc when 0).
	BufAlloc uint32
	// Log receives the device's log.
	Log *logrus.Entry
}

type queue struct {
	q *virtq.Queue
}

// Device is a virtio-vsock device; it implements vhostuser.Device.
type Device struct {
	opts Options
	log  *logrus.Entry

	mu       sync.Mutex
	mem      *vhostuser.Memory
	queues   [numQueues]*queue
	calls    [numQueues]*os.File
	conns    map[connKey]*conn
	pending  []*packet
	nextPort uint32
	listener net.Listener
	closed   bool
	wg       sync.WaitGroup
}

var _ vhostuser.Device = (*Device)(nil)

// New returns a device; call ListenHost to accept host connections.
func New(opts Options) *Device {
	if opts.BufAlloc == 0 {
		opts.BufAlloc = DefaultBufAlloc
	}
	return &Device{opts: opts, log: opts.Log, conns: map[connKey]*conn{}, nextPort: firstHostPort}
}

// Features implements vhostuser.Device: VIRTIO_F_VERSION_1 and the
// stream socket type (no feature bit needed).
func (d *Device) Features() uint64 { return vhostuser.FeatureVersion1 }

// SetFeatures implements vhostuser.Device.
func (d *Device) SetFeatures(f uint64) {
	d.log.WithField("features", fmt.Sprintf("%#x", f)).Debug("vsock: features acked")
}

// Config implements vhostuser.Device: struct virtio_vsock_config, the
// 64-bit guest CID.
func (d *Device) Config() []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(d.opts.CID >> (8 * i))
	}
	return b
}

// NumQueues implements vhostuser.Device.
func (d *Device) NumQueues() int { return numQueues }

// SetMemory implements vhostuser.Device.
func (d *Device) SetMemory(mem *vhostuser.Memory) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mem = mem
	for i, q := range d.queues {
		if q == nil {
			continue
		}
		if mem == nil {
			d.stopLocked(i)
			continue
		}
		if err := q.q.Remap(mem); err != nil {
			d.log.WithError(err).WithField("ring", i).Warn("vsock: ring outside the new memory table; stopped")
			d.stopLocked(i)
		}
	}
}

// SetCall implements vhostuser.Device.
func (d *Device) SetCall(i int, f *os.File) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[i] = f
	if q := d.queues[i]; q != nil {
		q.q.SetCall(f)
	}
}

// StartQueue implements vhostuser.Device.
func (d *Device) StartQueue(i int, cfg vhostuser.QueueConfig) error {
	vq, err := virtq.New(cfg.Mem, virtq.Config{Size: cfg.Size, Desc: cfg.Desc, Avail: cfg.Avail, Used: cfg.Used, NextAvail: cfg.NextAvail})
	if err != nil {
		return err
	}
	vq.MaxChainLen = HeaderSize + MaxPacketPayload + 4096
	if i == RxQueue {
		// rx chains are written, never read: allow a generous buffer
		vq.MaxChainLen = 1 << 20
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	vq.SetCall(d.calls[i])
	q := &queue{q: vq}
	d.queues[i] = q
	d.wg.Add(1)
	go d.kickLoop(i, q, cfg.Kick)
	d.serviceLocked(i)
	return nil
}

// StopQueue implements vhostuser.Device. Stopping either ring resets
// every connection: the driver is going away.
func (d *Device) StopQueue(i int) uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[i]
	if q == nil {
		return 0
	}
	n := q.q.NextAvail()
	d.stopLocked(i)
	return n
}

func (d *Device) stopLocked(i int) {
	d.queues[i] = nil
	for _, c := range d.conns {
		d.closeLocked(c, false, true)
	}
	d.pending = nil
}

// kickLoop services ring i each time the guest kicks it, until the kick
// fd is closed (by the vhost-user server, after StopQueue).
func (d *Device) kickLoop(i int, q *queue, kick *os.File) {
	defer d.wg.Done()
	var b [8]byte
	for {
		if _, err := kick.Read(b[:]); err != nil {
			return
		}
		d.mu.Lock()
		if d.queues[i] != q {
			d.mu.Unlock()
			return
		}
		d.serviceLocked(i)
		d.mu.Unlock()
	}
}

func (d *Device) serviceLocked(i int) {
	if i == TxQueue {
		d.processTxLocked()
	}
	d.flushRxLocked()
}

// guestMemoryFault turns a fault on guest memory into a logged error.
func (d *Device) guestMemoryFault(ring string) {
	if r := recover(); r != nil {
		d.log.WithField("ring", ring).Errorf("vsock: fault on guest memory: %v", r)
	}
}

// processTxLocked takes every packet the guest sent.
func (d *Device) processTxLocked() {
	q := d.queues[TxQueue]
	if q == nil {
		return
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.guestMemoryFault("tx")
	did := false
	for {
		c, err := q.q.Pop()
		if err != nil {
			d.log.WithError(err).Warn("vsock: tx descriptor dropped")
			did = true
			continue
		}
		if c == nil {
			break
		}
		did = true
		d.takePacketLocked(c)
		q.q.Push(c.Head, 0)
	}
	if did {
		if err := q.q.Notify(); err != nil {
			d.log.WithError(err).Warn("vsock: tx interrupt")
		}
	}
}

func (d *Device) takePacketLocked(c *virtq.Chain) {
	var hb [HeaderSize]byte
	if c.Gather(hb[:], 0) < HeaderSize {
		d.log.WithField("bytes", c.ReadableLen()).Warn("vsock: tx packet shorter than its header dropped")
		return
	}
	h, _ := DecodeHeader(hb[:])
	log := d.log.WithFields(logrus.Fields{"op": OpName(h.Op), "src": h.SrcPort, "dst": h.DstPort})
	if h.Len > MaxPacketPayload {
		log.WithField("len", h.Len).Warn("vsock: oversized tx packet; connection reset")
		d.replyRstLocked(h)
		return
	}
	if c.ReadableLen()-HeaderSize < int(h.Len) {
		log.WithField("len", h.Len).Warn("vsock: tx packet shorter than its len; connection reset")
		d.replyRstLocked(h)
		return
	}
	var payload []byte
	if h.Len > 0 && h.Op == OpRW {
		payload = make([]byte, h.Len)
		c.Gather(payload, HeaderSize)
	}
	d.dispatchLocked(h, payload, log)
}

// replyRstLocked answers a guest packet with RST (never an RST with RST).
func (d *Device) replyRstLocked(h Header) {
	if h.Op == OpRst {
		return
	}
	if c := d.conns[connKey{host: h.DstPort, guest: h.SrcPort}]; c != nil && h.SrcCID == d.opts.CID {
		d.closeLocked(c, true, true)
		return
	}
	d.pending = append(d.pending, &packet{hdr: Header{SrcCID: HostCID, DstCID: h.SrcCID,
		SrcPort: h.DstPort, DstPort: h.SrcPort, Type: TypeStream, Op: OpRst}})
}

// flushRxLocked moves queued packets into the guest's rx buffers.
func (d *Device) flushRxLocked() {
	q := d.queues[RxQueue]
	if q == nil || len(d.pending) == 0 {
		return
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.guestMemoryFault("rx")
	did := false
	var hb [HeaderSize]byte
	for len(d.pending) > 0 {
		p := d.pending[0]
		if p.conn != nil && p.conn.dropPending {
			d.pending = d.pending[1:]
			continue
		}
		c, err := q.q.Pop()
		if err != nil {
			d.log.WithError(err).Warn("vsock: rx descriptor dropped")
			did = true
			continue
		}
		if c == nil {
			break
		}
		did = true
		space := c.WritableLen()
		if space < HeaderSize {
			d.log.WithField("bytes", space).Warn("vsock: rx buffer smaller than a header dropped")
			q.q.Push(c.Head, 0)
			continue
		}
		n := min(len(p.data), space-HeaderSize)
		h := p.hdr
		h.Len = uint32(n)
		if p.conn != nil {
			h.BufAlloc = d.opts.BufAlloc
			h.FwdCnt = p.conn.fwdCnt
			p.conn.lastFwdSent = p.conn.fwdCnt
			if h.Op == OpCreditUpdate {
				p.conn.creditQueued = false
			}
		} else if h.BufAlloc == 0 {
			h.BufAlloc = d.opts.BufAlloc
		}
		h.Encode(hb[:])
		c.Scatter(hb[:], 0)
		c.Scatter(p.data[:n], HeaderSize)
		q.q.Push(c.Head, uint32(HeaderSize+n))
		if n < len(p.data) {
			p.data = p.data[n:]
		} else {
			d.pending[0] = nil
			d.pending = d.pending[1:]
		}
	}
	if did {
		if err := q.q.Notify(); err != nil {
			d.log.WithError(err).Warn("vsock: rx interrupt")
		}
	}
}

// Close stops accepting host connections and closes every connection.
func (d *Device) Close() error {
	d.mu.Lock()
	d.closed = true
	l := d.listener
	for _, c := range d.conns {
		d.closeLocked(c, false, true)
	}
	d.mu.Unlock()
	var err error
	if l != nil {
		err = l.Close()
	}
	return err
}
