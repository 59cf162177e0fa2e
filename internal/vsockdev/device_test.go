package vsockdev_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/vhostuser"
	"github.com/opengcs/opengcs/internal/vsockdev"
)

// hostListen listens where a guest connection to host port lands.
func (f *front) hostListen(t *testing.T, port uint32) net.Listener {
	l, err := net.Listen("unix", fmt.Sprintf("%s_%d", f.prefix, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// hostDial connects into the guest through the hybrid-vsock socket.
func (f *front) hostDial(port uint32) (net.Conn, error) {
	c, err := net.Dial("unix", f.prefix)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %d\n", port)
	line, err := bufio.NewReader(io.LimitReader(c, 32)).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("CONNECT %d: %q, %w", port, line, err)
	}
	if !strings.HasPrefix(line, "OK ") {
		c.Close()
		return nil, fmt.Errorf("CONNECT %d: %q", port, line)
	}
	return c, nil
}

func (f *front) checkGuest(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violations {
		t.Error("guest saw:", v)
	}
}

func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHandshakeAndControlMessages(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	// A message the back-end does not know is refused, and the
	// connection goes on.
	f.ackOK(vhostuser.Request(99), []byte{1, 2, 3}, 1)
	// A ring index the device does not have.
	f.ackOK(vhostuser.SetVringNum, state(5, 64), 1)
	// A memory table whose region lies beyond its fd.
	f.ackOK(vhostuser.SetMemTable, memTable(vhostuser.Region{GuestPhys: 0, Size: memSize * 4, UserAddr: memUVA}), 1, f.memfd)
	// The device still works: a connection round trip.
	l := f.hostListen(t, 1)
	c, err := f.connect(1)
	if err != nil {
		t.Fatal(err)
	}
	h := accept(t, l)
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(h, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("host read %q, %v", buf, err)
	}
	// GET_VRING_BASE stops the ring and reports where the device is.
	f.mu.Lock()
	txPosted := f.txAvailIx
	f.mu.Unlock()
	f.send(vhostuser.GetVringBase, 0, state(1, 0))
	got := f.recv(vhostuser.GetVringBase)
	if binary.LittleEndian.Uint32(got) != 1 || binary.LittleEndian.Uint32(got[4:]) != uint32(txPosted) {
		t.Fatalf("GET_VRING_BASE = %x, want ring 1 at %d", got, txPosted)
	}
	// Stopping the device resets its connections: the host sees EOF.
	h.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := h.Read(buf); err == nil {
		t.Fatalf("host connection alive after the ring stopped: %d bytes", n)
	}
	f.checkGuest(t)
}

func TestFrontEndDisconnectEndsServe(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	f.sock.Close()
	select {
	case err := <-f.served:
		if err != nil {
			t.Fatalf("Serve after QEMU disconnected: %v", err)
		}
		f.served <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestGuestConnectDataAndShutdown(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	l := f.hostListen(t, 109)
	c, err := f.connect(109)
	if err != nil {
		t.Fatal(err)
	}
	h := accept(t, l)
	if _, err := c.Write([]byte("guest to host\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(h).ReadString('\n')
	if err != nil || line != "guest to host\n" {
		t.Fatalf("host read %q, %v", line, err)
	}
	if _, err := h.Write([]byte("host to guest")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 13)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "host to guest" {
		t.Fatalf("guest read %q, %v", buf, err)
	}
	// Guest half-close: the host reads EOF and can still write.
	c.CloseWrite()
	if b, err := io.ReadAll(h); err != nil || len(b) != 0 {
		t.Fatalf("host after guest SHUTDOWN(SEND): %q, %v", b, err)
	}
	h.Write([]byte("late"))
	h.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "late" {
		t.Fatalf("guest read %q, %v after the host closed", b, err)
	}
	// Both directions done: the device resets the connection.
	f.mu.Lock()
	for !c.reset {
		f.cond.Wait()
	}
	f.mu.Unlock()
	f.checkGuest(t)
}

func TestGuestConnectRefused(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	if _, err := f.connect(4242); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("connect to a port nobody listens on: %v", err)
	}
}

func TestHostConnect(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	ch := f.listen(0x40000000)
	h, err := f.hostDial(0x40000000)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := <-ch
	h.Write([]byte("hello guest"))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello guest" {
		t.Fatalf("guest read %q, %v", buf, err)
	}
	c.Write([]byte("hello host"))
	if _, err := io.ReadFull(h, buf[:10]); err != nil || string(buf[:10]) != "hello host" {
		t.Fatalf("host read %q, %v", buf[:10], err)
	}
	// The guest closes: the host reads EOF; the guest gets its RST.
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	if b, err := io.ReadAll(h); err != nil || len(b) != 0 {
		t.Fatalf("host after guest close: %q, %v", b, err)
	}
	<-done

	// Nobody listens on the guest port: the guest resets, the host's
	// connection closes without an OK.
	if _, err := f.hostDial(7777); err == nil {
		t.Fatal("CONNECT to a port the guest does not listen on succeeded")
	}
	// A bad request line is closed without an answer.
	bad, err := net.Dial("unix", f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte("CONNECT nope\n"))
	if b, _ := io.ReadAll(bad); len(b) != 0 {
		t.Fatalf("answer to a bad CONNECT line: %q", b)
	}
	bad.Close()
	f.checkGuest(t)
}

func TestLargeTransferBothWays(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	const size = 8 << 20
	up, down := make([]byte, size), make([]byte, size)
	rand.Read(up)
	rand.Read(down)
	l := f.hostListen(t, 5000)
	c, err := f.connect(5000)
	if err != nil {
		t.Fatal(err)
	}
	h := accept(t, l)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errUp, errDown error
	wg.Add(4)
	go func() { defer wg.Done(); c.Write(up); c.CloseWrite() }()
	go func() { defer wg.Done(); h.Write(down); h.(*net.UnixConn).CloseWrite() }()
	go func() { defer wg.Done(); gotUp, errUp = io.ReadAll(h) }()
	go func() { defer wg.Done(); gotDown, errDown = io.ReadAll(c) }()
	wg.Wait()
	if errUp != nil || !bytes.Equal(gotUp, up) {
		t.Errorf("guest to host: %d of %d bytes, equal=%v, %v", len(gotUp), size, bytes.Equal(gotUp, up), errUp)
	}
	if errDown != nil || !bytes.Equal(gotDown, down) {
		t.Errorf("host to guest: %d of %d bytes, equal=%v, %v", len(gotDown), size, bytes.Equal(gotDown, down), errDown)
	}
	f.checkGuest(t)
}

// TestCreditFlowControl: with a small device buffer, a host that does
// not read stops the guest's writes (it runs out of credit) and nothing
// is lost; with a guest that does not read, the device never sends past
// the guest's buffer (checked on every packet by the guest stack).
func TestCreditFlowControl(t *testing.T) {
	f := newFront(t, 16<<10)
	f.handshake()
	l := f.hostListen(t, 6000)
	c, err := f.connect(6000)
	if err != nil {
		t.Fatal(err)
	}
	h := accept(t, l)
	const size = 4 << 20
	data := make([]byte, size)
	rand.Read(data)
	wrote := make(chan error, 1)
	go func() { _, err := c.Write(data); c.CloseWrite(); wrote <- err }()
	// The host reads nothing until the guest has stalled on credit (the
	// unix socket buffer fills first, then the device's 16 KiB).
	f.mu.Lock()
	for c.stalls == 0 {
		f.cond.Wait()
	}
	f.mu.Unlock()
	got, err := io.ReadAll(h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("host read %d of %d bytes (equal %v), %v", len(got), size, bytes.Equal(got, data), err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	// Host to a guest that reads slowly (64 KiB buffer).
	go func() { h.Write(data); h.(*net.UnixConn).CloseWrite() }()
	var back bytes.Buffer
	buf := make([]byte, 1000)
	for {
		n, err := c.Read(buf)
		back.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(back.Bytes(), data) {
		t.Fatalf("guest read %d of %d bytes, not equal", back.Len(), size)
	}
	f.checkGuest(t)
}

func TestManyConnections(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	const n, size = 40, 96 << 10
	l := f.hostListen(t, 7000)
	// The host echoes every connection.
	go func() {
		for {
			h, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(h, h); h.(*net.UnixConn).CloseWrite() }()
		}
	}()
	ch := f.listen(8000)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() { // guest-initiated, echoed by the host
			defer wg.Done()
			c, err := f.connect(7000)
			if err != nil {
				errs <- err
				return
			}
			data := bytes.Repeat([]byte{byte(i)}, size)
			go func() { c.Write(data); c.CloseWrite() }()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("conn %d: echoed %d of %d bytes, %v", i, len(got), size, err)
			}
			c.Close()
		}()
		go func() { // host-initiated, echoed by the guest
			defer wg.Done()
			h, err := f.hostDial(8000)
			if err != nil {
				errs <- err
				return
			}
			defer h.Close()
			data := bytes.Repeat([]byte{byte(i) ^ 0xff}, size)
			go func() { h.Write(data); h.(*net.UnixConn).CloseWrite() }()
			got, err := io.ReadAll(h)
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("host conn %d: echoed %d of %d bytes, %v", i, len(got), size, err)
			}
		}()
		go func() {
			c := <-ch
			io.Copy(c, c)
			c.CloseWrite()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f.checkGuest(t)
}

// TestMalformedFromGuest sends the device broken descriptor chains and
// packets: each is logged and dropped or answered with RST, and the
// device keeps serving.
func TestMalformedFromGuest(t *testing.T) {
	f := newFront(t, 0)
	f.handshake()
	hdr := func(mod func(*vsockdev.Header)) []byte {
		h := vsockdev.Header{SrcCID: guestCID, DstCID: vsockdev.HostCID, SrcPort: 1, DstPort: 2, Type: vsockdev.TypeStream, Op: vsockdev.OpRW}
		mod(&h)
		b := make([]byte, vsockdev.HeaderSize)
		h.Encode(b)
		return b
	}
	type desc struct {
		addr  uint64 // 0: the slot's buffer
		n     uint32
		flags uint16
		next  int // -1: the slot's second descriptor
	}
	cases := []struct {
		name  string
		head  int // -1: the slot's first descriptor
		bytes []byte
		descs []desc
		rst   bool
	}{
		{name: "head beyond ring", head: 200},
		{name: "address below guest memory", head: -1, descs: []desc{{addr: 0x1000, n: 44}}},
		{name: "buffer runs past guest memory", head: -1, descs: []desc{{addr: memGPA + memSize - 10, n: 44}}},
		{name: "length wraps the address space", head: -1, descs: []desc{{addr: memGPA, n: 0xffffffff}}},
		{name: "descriptor loop", head: -1, descs: []desc{{n: 44, flags: 1, next: -2}}},
		{name: "next beyond ring", head: -1, descs: []desc{{n: 44, flags: 1, next: 500}}},
		{name: "indirect descriptor", head: -1, descs: []desc{{n: 44, flags: 4}}},
		{name: "readable after writable", head: -1, descs: []desc{{n: 44, flags: 2 | 1, next: -1}, {n: 4}}},
		{name: "short header", head: -1, bytes: hdr(func(*vsockdev.Header) {})[:20], descs: []desc{{n: 20}}},
		{name: "oversized len", head: -1, bytes: hdr(func(h *vsockdev.Header) { h.Len = 1 << 20 }), descs: []desc{{n: 44}}, rst: true},
		{name: "len beyond the chain", head: -1, bytes: hdr(func(h *vsockdev.Header) { h.Len = 100 }), descs: []desc{{n: 44}}, rst: true},
		{name: "foreign source cid", head: -1, bytes: hdr(func(h *vsockdev.Header) { h.SrcCID = 99; h.Op = vsockdev.OpRequest }), descs: []desc{{n: 44}}},
		{name: "unknown op", head: -1, bytes: hdr(func(h *vsockdev.Header) { h.Op = 99 }), descs: []desc{{n: 44}}, rst: true},
		{name: "datagram type", head: -1, bytes: hdr(func(h *vsockdev.Header) { h.Type = 3; h.Op = vsockdev.OpRequest }), descs: []desc{{n: 44}}, rst: true},
		{name: "rw without connection", head: -1, bytes: hdr(func(*vsockdev.Header) {}), descs: []desc{{n: 44}}, rst: true},
		{name: "response without request", head: -1, bytes: hdr(func(h *vsockdev.Header) { h.Op = vsockdev.OpResponse }), descs: []desc{{n: 44}}, rst: true},
	}
	wantRst := 0
	f.mu.Lock()
	for _, tc := range cases {
		if tc.rst {
			wantRst++
		}
		if tc.head >= 0 {
			f.sendRawLocked(uint16(tc.head))
			continue
		}
		for len(f.txFree) == 0 {
			f.cond.Wait()
		}
		j := f.txFree[0]
		f.txFree = f.txFree[1:]
		off := txBufs + int(j)*slotSize
		clear(f.mem[off : off+slotSize])
		copy(f.mem[off:], tc.bytes)
		for k, d := range tc.descs {
			addr := d.addr
			if addr == 0 {
				addr = uint64(memGPA + off + 0x40*k)
			}
			next := uint16(d.next)
			switch d.next {
			case -1:
				next = 2*j + 1
			case -2:
				next = 2 * j
			}
			f.setDesc(txDescOff, int(2*j)+k, addr, d.n, d.flags, next)
		}
		f.sendRawLocked(2 * j)
	}
	f.mu.Unlock()
	l := f.hostListen(t, 9)
	c, err := f.connect(9)
	if err != nil {
		t.Fatalf("device no longer serves after malformed input: %v", err)
	}
	h := accept(t, l)
	c.Write([]byte("still here"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(h, buf); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.rsts) < wantRst {
		f.cond.Wait()
	}
	for _, r := range f.rsts {
		if r.SrcPort != 2 || r.DstPort != 1 {
			t.Errorf("RST with ports %d->%d, want 2->1", r.SrcPort, r.DstPort)
		}
	}
	for _, v := range f.violations {
		t.Error("guest saw:", v)
	}
}

// TestBadRingAddress: a ring outside guest memory is not started; the
// server keeps going.
func TestBadRingAddress(t *testing.T) {
	f := newFront(t, 0)
	f.send(vhostuser.SetProtocolFeatures, 0, u64(vhostuser.ProtocolReplyAck|vhostuser.ProtocolConfig))
	f.ackOK(vhostuser.SetFeatures, u64(vhostuser.FeatureVersion1|vhostuser.FeatureProtocolFeatures), 0)
	f.ackOK(vhostuser.SetMemTable, memTable(vhostuser.Region{GuestPhys: memGPA, Size: memSize, UserAddr: memUVA}), 0, f.memfd)
	f.ackOK(vhostuser.SetVringNum, state(0, ringSize), 0)
	b := vringAddr(0, 0, 0, 0)
	binary.LittleEndian.PutUint64(b[8:], 0xdead0000) // desc outside the table
	f.ackOK(vhostuser.SetVringAddr, b, 0)
	f.ackOK(vhostuser.SetVringNum, state(1, 3), 0) // not a power of two
	f.ackOK(vhostuser.SetVringAddr, vringAddr(1, txDescOff, txUsed, txAvail), 0)
	for i := range 2 {
		f.ackOK(vhostuser.SetVringKick, u64(uint64(i)), 0, int(f.kick[i].Fd()))
		f.ackOK(vhostuser.SetVringEnable, state(uint32(i), 1), 0)
	}
	cfgReq := make([]byte, 12+8)
	cfgReq[4] = 8
	f.send(vhostuser.GetConfig, 0, cfgReq)
	if len(f.recv(vhostuser.GetConfig)) != 20 {
		t.Fatal("bad GET_CONFIG reply size")
	}
}
