package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/service/gcs/bridge"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

const testGUID = "6a3b2c1d-0000-4000-8000-00155d0a0b0c"

// quietLog discards the bridge's logging.
func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// socketPair returns the two ends of a connected AF_UNIX stream socket
// pair: the guest end is served by the bridge, the host end is driven by
// the test.
func socketPair(t testing.TB) (guest, host *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	conv := func(fd int, name string) *net.UnixConn {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatalf("FileConn: %v", err)
		}
		return c.(*net.UnixConn)
	}
	guest, host = conv(fds[0], "guest"), conv(fds[1], "host")
	t.Cleanup(func() { guest.Close(); host.Close() })
	return guest, host
}

// served is one connection being served by a bridge.
type served struct {
	t    testing.TB
	host *net.UnixConn
	r    *bufio.Reader
	done chan error
}

// serve runs b.Serve on a fresh socket pair until the test ends.
func serve(t testing.TB, b *bridge.Bridge) *served {
	t.Helper()
	guest, host := socketPair(t)
	s := &served{t: t, host: host, r: bufio.NewReader(host), done: make(chan error, 1)}
	go func() { s.done <- b.Serve(context.Background(), guest) }()
	t.Cleanup(func() {
		host.Close()
		s.wait()
	})
	return s
}

// wait returns Serve's error, failing the test if Serve does not return.
func (s *served) wait() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // keep it for later calls
		return err
	case <-time.After(30 * time.Second):
		s.t.Fatalf("Serve did not return")
		return nil
	}
}

// frameBytes builds a request frame.
func frameBytes(t testing.TB, typ prot.MessageIdentifier, id uint64, body any) []byte {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		data = append(data, '\n')
	}
	buf := make([]byte, prot.HeaderSize+len(data))
	prot.Header{Type: typ, Size: uint32(len(buf)), ID: id}.Encode(buf)
	copy(buf[prot.HeaderSize:], data)
	return buf
}

func (s *served) send(typ prot.MessageIdentifier, id uint64, body any) {
	s.t.Helper()
	s.write(frameBytes(s.t, typ, id, body))
}

func (s *served) write(b []byte) {
	s.t.Helper()
	if _, err := s.host.Write(b); err != nil {
		s.t.Fatalf("host write: %v", err)
	}
}

// frame is one frame read by the host.
type frame struct {
	prot.Header
	Body []byte
}

// read reads one frame, checking what the host checks: size within
// [16, 64 KiB], response or notification type.
func (s *served) read() frame {
	s.t.Helper()
	f, err := s.tryRead(30 * time.Second)
	if err != nil {
		s.t.Fatalf("host read: %v", err)
	}
	return f
}

func (s *served) tryRead(timeout time.Duration) (frame, error) {
	_ = s.host.SetReadDeadline(time.Now().Add(timeout))
	var hdr [prot.HeaderSize]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return frame{}, err
	}
	h := prot.DecodeHeader(hdr[:])
	if err := h.CheckSize(prot.MaxHostMessageSize); err != nil {
		return frame{}, fmt.Errorf("frame the host would reject: %w", err)
	}
	switch h.Type & prot.TypeMask {
	case prot.TypeResponse:
	case prot.TypeNotification:
		if h.Type != prot.ComputeSystemNotificationV1 || h.ID != 0 {
			return frame{}, fmt.Errorf("bad notification header %+v", h)
		}
	default:
		return frame{}, fmt.Errorf("frame type %s from the guest", h.Type)
	}
	body := make([]byte, h.BodySize())
	if _, err := io.ReadFull(s.r, body); err != nil {
		return frame{}, err
	}
	return frame{Header: h, Body: body}, nil
}

// response reads a frame that must be the response to (typ, id) and
// decodes its base.
func (s *served) response(typ prot.MessageIdentifier, id uint64) (frame, prot.MessageResponseBase) {
	s.t.Helper()
	f := s.read()
	if f.Type != prot.ResponseFor(typ) || f.ID != id {
		s.t.Fatalf("got %s id %d, want %s id %d (body %s)", f.Type, f.ID, prot.ResponseFor(typ), id, f.Body)
	}
	return f, decodeBase(s.t, f.Body)
}

func decodeBase(t testing.TB, body []byte) prot.MessageResponseBase {
	t.Helper()
	var b prot.MessageResponseBase
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("response body %s: %v", body, err)
	}
	return b
}

// negotiate sends NegotiateProtocol with id and checks success.
func (s *served) negotiate(id uint64) {
	s.t.Helper()
	s.send(prot.ComputeSystemNegotiateProtocolV1, id, negotiateBody(4, 4))
	_, b := s.response(prot.ComputeSystemNegotiateProtocolV1, id)
	if b.Result != 0 {
		s.t.Fatalf("negotiate failed: %+v", b)
	}
}

func negotiateBody(min, max uint32) *prot.NegotiateProtocol {
	return &prot.NegotiateProtocol{MessageBase: prot.MessageBase{ActivityID: prot.NullActivityID}, MinimumVersion: min, MaximumVersion: max}
}

func msg(cid string) *prot.MessageBase {
	return &prot.MessageBase{ContainerID: cid, ActivityID: prot.NullActivityID}
}

// newBridge returns a v4 bridge whose mux is filled by register.
func newBridge(register func(m *bridge.Mux), mod ...func(*bridge.Config)) *bridge.Bridge {
	m := bridge.NewMux()
	if register != nil {
		register(m)
	}
	cfg := bridge.Config{Mux: m, EnableV4: true, Capabilities: prot.LinuxCapabilities(), Log: quietLog()}
	for _, f := range mod {
		f(&cfg)
	}
	return bridge.New(cfg)
}

// okHandler answers with an empty success.
func okHandler(context.Context, *bridge.Request) (prot.Response, error) {
	return &prot.MessageResponseBase{}, nil
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
