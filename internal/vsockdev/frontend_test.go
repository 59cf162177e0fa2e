package vsockdev_test

// This file plays QEMU and the guest: a memfd is guest memory, the test
// lays out the rx and tx split virtqueues in it, drives the back-end over
// a vhost-user socket and runs a minimal guest vsock stack on the rings.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/vhostuser"
	"github.com/opengcs/opengcs/internal/vsockdev"
)

const (
	guestCID  = 7
	memSize   = 1 << 20
	memGPA    = 0x100000       // guest-physical base of the one region
	memUVA    = 0x7f1200000000 // the "front-end's" address of it
	ringSize  = 64
	chains    = ringSize / 2 // two descriptors per packet
	bufSize   = 4096
	slotSize  = 0x1100
	rxDescOff = 0x0000
	rxAvail   = 0x0400
	rxUsed    = 0x1000
	txDescOff = 0x2000
	txAvail   = 0x2400
	txUsed    = 0x3000
	rxBufs    = 0x10000
	txBufs    = 0x40000
)

// front is QEMU plus the guest driver.
type front struct {
	t      *testing.T
	mem    []byte
	memfd  int
	sock   *net.UnixConn
	kick   [2]*os.File
	call   [2]*os.File
	prefix string
	dev    *vsockdev.Device
	served chan error
	loops  sync.WaitGroup // the interrupt loops

	mu        sync.Mutex
	cond      *sync.Cond
	txFree    []uint16 // free tx chain slots
	txAvailIx uint16
	txUsedIx  uint16
	rxAvailIx uint16
	rxUsedIx  uint16
	conns     map[[2]uint32]*gconn // {guest port, host port}
	listeners map[uint32]chan *gconn
	nextPort  uint32
	// guest-side checks
	violations []string
	rsts       []vsockdev.Header // RSTs for no connection
}

func logEntry(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() && os.Getenv("VSOCK_DEBUG") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

func eventfd(t *testing.T) *os.File {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "eventfd")
}

// newFront starts a back-end device (bufAlloc 0: default) and connects
// to it as QEMU; handshake runs the vhost-user set-up.
func newFront(t *testing.T, bufAlloc uint32) *front {
	t.Helper()
	dir, err := os.MkdirTemp("", "vsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &front{t: t, prefix: filepath.Join(dir, "v"), served: make(chan error, 1),
		conns: map[[2]uint32]*gconn{}, listeners: map[uint32]chan *gconn{}, nextPort: 50000}
	f.cond = sync.NewCond(&f.mu)
	f.memfd, err = unix.MemfdCreate("guest", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(f.memfd, memSize); err != nil {
		t.Fatal(err)
	}
	if f.mem, err = unix.Mmap(f.memfd, 0, memSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		t.Fatal(err)
	}
	f.dev = vsockdev.New(vsockdev.Options{CID: guestCID, UDSPrefix: f.prefix, BufAlloc: bufAlloc, Log: logEntry(t)})
	if err := f.dev.ListenHost(); err != nil {
		t.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.sock = fileConn(t, pair[0])
	back := fileConn(t, pair[1])
	go func() { f.served <- vhostuser.NewServer(back, f.dev, logEntry(t)).Serve(); back.Close() }()
	for i := range 2 {
		f.kick[i], f.call[i] = eventfd(t), eventfd(t)
	}
	t.Cleanup(f.close)
	return f
}

func fileConn(t *testing.T, fd int) *net.UnixConn {
	file := os.NewFile(uintptr(fd), "sock")
	c, err := net.FileConn(file)
	file.Close()
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.UnixConn)
}

func (f *front) close() {
	f.sock.Close()
	select {
	case <-f.served:
	case <-time.After(30 * time.Second):
		f.t.Error("vhost-user server did not return after the front-end closed")
	}
	f.dev.Close()
	for i := range 2 {
		f.kick[i].Close()
		f.call[i].Close()
	}
	f.loops.Wait()
	unix.Munmap(f.mem)
	unix.Close(f.memfd)
}

// send writes one vhost-user message with fds.
func (f *front) send(req vhostuser.Request, flags uint32, payload []byte, fds ...int) {
	f.t.Helper()
	b := make([]byte, vhostuser.HeaderSize+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(req))
	binary.LittleEndian.PutUint32(b[4:], vhostuser.FlagVersion|flags)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))
	copy(b[vhostuser.HeaderSize:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := f.sock.WriteMsgUnix(b, oob, nil); err != nil {
		f.t.Fatalf("send %v: %v", req, err)
	}
}

// recv reads a reply to req and returns its payload.
func (f *front) recv(req vhostuser.Request) []byte {
	f.t.Helper()
	f.sock.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer f.sock.SetReadDeadline(time.Time{})
	h := make([]byte, vhostuser.HeaderSize)
	if _, err := io.ReadFull(f.sock, h); err != nil {
		f.t.Fatalf("reply to %v: %v", req, err)
	}
	hdr, err := vhostuser.ParseHeader(h)
	if err != nil || hdr.Request != req || hdr.Flags&vhostuser.FlagReply == 0 {
		f.t.Fatalf("reply to %v: %+v, %v", req, hdr, err)
	}
	p := make([]byte, hdr.Size)
	if _, err := io.ReadFull(f.sock, p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func state(i, n uint32) []byte {
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, i), n)
}

// ackOK sends a message asking for REPLY_ACK and checks the ack.
func (f *front) ackOK(req vhostuser.Request, payload []byte, want uint64, fds ...int) {
	f.t.Helper()
	f.send(req, vhostuser.FlagNeedReply, payload, fds...)
	if got := binary.LittleEndian.Uint64(f.recv(req)); got != want {
		f.t.Fatalf("%v acked %d, want %d", req, got, want)
	}
}

func memTable(regions ...vhostuser.Region) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(regions)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	for _, r := range regions {
		for _, v := range []uint64{r.GuestPhys, r.Size, r.UserAddr, r.MmapOffset} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	return b
}

func vringAddr(i uint32, desc, used, avail uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, i)
	b = binary.LittleEndian.AppendUint32(b, 0)
	for _, v := range []uint64{memUVA + desc, memUVA + used, memUVA + avail, 0} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// handshake negotiates like QEMU 7.2 and starts both rings, then the
// guest driver's loops.
func (f *front) handshake() {
	t := f.t
	t.Helper()
	f.send(vhostuser.GetFeatures, 0, nil)
	feat := binary.LittleEndian.Uint64(f.recv(vhostuser.GetFeatures))
	if feat&vhostuser.FeatureProtocolFeatures == 0 || feat&vhostuser.FeatureVersion1 == 0 {
		t.Fatalf("features %#x lack PROTOCOL_FEATURES or VERSION_1", feat)
	}
	f.send(vhostuser.GetProtocolFeatures, 0, nil)
	pf := binary.LittleEndian.Uint64(f.recv(vhostuser.GetProtocolFeatures))
	if pf&vhostuser.ProtocolReplyAck == 0 || pf&vhostuser.ProtocolConfig == 0 {
		t.Fatalf("protocol features %#x lack REPLY_ACK or CONFIG", pf)
	}
	f.send(vhostuser.SetProtocolFeatures, 0, u64(vhostuser.ProtocolReplyAck|vhostuser.ProtocolConfig))
	f.ackOK(vhostuser.SetOwner, nil, 0)
	cfgReq := make([]byte, 12+8)
	binary.LittleEndian.PutUint32(cfgReq[4:], 8)
	f.send(vhostuser.GetConfig, 0, cfgReq)
	cfg := f.recv(vhostuser.GetConfig)
	if len(cfg) != 20 || binary.LittleEndian.Uint64(cfg[12:]) != guestCID {
		t.Fatalf("GET_CONFIG = %x, want guest_cid %d", cfg, guestCID)
	}
	f.ackOK(vhostuser.SetFeatures, u64(vhostuser.FeatureVersion1|vhostuser.FeatureProtocolFeatures), 0)
	f.ackOK(vhostuser.SetMemTable, memTable(vhostuser.Region{GuestPhys: memGPA, Size: memSize, UserAddr: memUVA}), 0, f.memfd)
	f.fillRx()
	for i, r := range []struct{ desc, avail, used uint64 }{{rxDescOff, rxAvail, rxUsed}, {txDescOff, txAvail, txUsed}} {
		ix := uint32(i)
		f.ackOK(vhostuser.SetVringNum, state(ix, ringSize), 0)
		f.ackOK(vhostuser.SetVringBase, state(ix, 0), 0)
		f.ackOK(vhostuser.SetVringAddr, vringAddr(ix, r.desc, r.used, r.avail), 0)
		f.ackOK(vhostuser.SetVringKick, u64(uint64(i)), 0, int(f.kick[i].Fd()))
		f.ackOK(vhostuser.SetVringCall, u64(uint64(i)), 0, int(f.call[i].Fd()))
	}
	for i := range 2 {
		f.ackOK(vhostuser.SetVringEnable, state(uint32(i), 1), 0)
	}
	for j := uint16(0); j < chains; j++ {
		f.txFree = append(f.txFree, j)
	}
	f.loops.Add(2)
	go f.interruptLoop(0, f.rxInterrupt)
	go f.interruptLoop(1, f.txInterrupt)
}

func (f *front) interruptLoop(i int, handle func()) {
	defer f.loops.Done()
	var b [8]byte
	for {
		if _, err := f.call[i].Read(b[:]); err != nil {
			return
		}
		handle()
	}
}

// Guest memory helpers (offsets into the memfd).
func (f *front) put16(off int, v uint16) { binary.LittleEndian.PutUint16(f.mem[off:], v) }
func (f *front) put32(off int, v uint32) { binary.LittleEndian.PutUint32(f.mem[off:], v) }
func (f *front) put64(off int, v uint64) { binary.LittleEndian.PutUint64(f.mem[off:], v) }
func (f *front) word(off int) *uint32    { return (*uint32)(unsafe.Pointer(&f.mem[off])) }

func (f *front) setDesc(table, i int, addr uint64, n uint32, flags, next uint16) {
	d := table + 16*i
	f.put64(d, addr)
	f.put32(d+8, n)
	f.put16(d+12, flags)
	f.put16(d+14, next)
}

// publish makes head available on a ring and kicks the device.
func (f *front) publish(avail int, ix *uint16, head uint16, kick int) {
	f.put16(avail+4+2*int(*ix%ringSize), head)
	*ix++
	atomic.StoreUint32(f.word(avail), uint32(*ix)<<16)
	f.kickRing(kick)
}

func (f *front) kickRing(i int) { f.kick[i].Write(u64(1)) }

// fillRx posts every rx chain: a 44-byte header buffer and a 4 KiB data
// buffer, as Linux 6.1 does.
func (f *front) fillRx() {
	for j := 0; j < chains; j++ {
		f.postRx(uint16(2 * j))
	}
}

func (f *front) postRx(head uint16) {
	j := int(head / 2)
	base := uint64(memGPA + rxBufs + j*slotSize)
	f.setDesc(rxDescOff, 2*j, base, vsockdev.HeaderSize, 1|2, uint16(2*j+1))
	f.setDesc(rxDescOff, 2*j+1, base+0x40, bufSize, 2, 0)
	f.put16(rxAvail+4+2*int(f.rxAvailIx%ringSize), head)
	f.rxAvailIx++
	atomic.StoreUint32(f.word(rxAvail), uint32(f.rxAvailIx)<<16)
}

func (f *front) usedIdx(used int) uint16 { return uint16(atomic.LoadUint32(f.word(used)) >> 16) }

// rxInterrupt takes the packets the device delivered.
func (f *front) rxInterrupt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.rxUsedIx != f.usedIdx(rxUsed) {
		e := rxUsed + 4 + 8*int(f.rxUsedIx%ringSize)
		head := uint16(binary.LittleEndian.Uint32(f.mem[e:]))
		n := binary.LittleEndian.Uint32(f.mem[e+4:])
		f.rxUsedIx++
		j := int(head / 2)
		off := rxBufs + j*slotSize
		h, err := vsockdev.DecodeHeader(f.mem[off:])
		if err != nil || n < vsockdev.HeaderSize || h.Len != n-vsockdev.HeaderSize || h.Len > bufSize {
			f.violations = append(f.violations, fmt.Sprintf("rx used len %d for header %+v", n, h))
		} else {
			f.guestReceive(h, append([]byte(nil), f.mem[off+0x40:off+0x40+int(h.Len)]...))
		}
		f.postRx(head)
	}
	f.kickRing(0)
}

// txInterrupt reclaims sent chains.
func (f *front) txInterrupt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.txUsedIx != f.usedIdx(txUsed) {
		e := txUsed + 4 + 8*int(f.txUsedIx%ringSize)
		head := uint16(binary.LittleEndian.Uint32(f.mem[e:]))
		f.txUsedIx++
		f.txFree = append(f.txFree, head/2)
	}
	f.cond.Broadcast()
}

// sendLocked puts one packet on the tx ring (header and payload in two
// descriptors), waiting for a free chain.
func (f *front) sendLocked(h vsockdev.Header, data []byte) { f.sendConnLocked(h, data, nil) }

// sendConnLocked sends a packet of connection c (nil: none); its credit
// fields are taken once a chain is free, so they never go backwards.
func (f *front) sendConnLocked(h vsockdev.Header, data []byte, c *gconn) {
	for len(f.txFree) == 0 {
		f.cond.Wait()
	}
	if c != nil {
		h.BufAlloc, h.FwdCnt = c.bufAlloc, c.fwdCnt
		c.lastFwdSent = c.fwdCnt
	}
	j := f.txFree[0]
	f.txFree = f.txFree[1:]
	h.SrcCID, h.DstCID, h.Type, h.Len = guestCID, vsockdev.HostCID, vsockdev.TypeStream, uint32(len(data))
	off := txBufs + int(j)*slotSize
	h.Encode(f.mem[off:])
	copy(f.mem[off+0x40:], data)
	base := uint64(memGPA + off)
	if len(data) > 0 {
		f.setDesc(txDescOff, int(2*j), base, vsockdev.HeaderSize, 1, 2*j+1)
		f.setDesc(txDescOff, int(2*j+1), base+0x40, uint32(len(data)), 0, 0)
	} else {
		f.setDesc(txDescOff, int(2*j), base, vsockdev.HeaderSize, 0, 0)
	}
	f.publish(txAvail, &f.txAvailIx, 2*j, 1)
}

// sendRaw puts arbitrary descriptors on the tx ring (for malformed
// input): descs are written at chain slot j's descriptors from index 2*j.
func (f *front) sendRawLocked(head uint16) {
	f.publish(txAvail, &f.txAvailIx, head, 1)
}
