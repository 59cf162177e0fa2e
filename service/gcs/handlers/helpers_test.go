package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/service/gcs/bridge"
	"github.com/opengcs/opengcs/service/gcs/handlers"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// call is one recorded Guest call.
type call struct {
	Method   string
	ID       string
	Settings *prot.VMHostedContainerSettingsV2
	Graceful bool
	Params   *prot.ProcessParameters
	Ports    prot.ExecuteProcessVsockStdioRelaySettings
	PID      uint32
	Timeout  time.Duration
	Signal   int
	Height   uint16
	Width    uint16
	Query    *prot.PropertyQuery
	Modify   *prot.ModificationRequest
}

// recordingGuest records every call and returns fixed, real values: the
// unit under test is the decoding in front of it.
type recordingGuest struct {
	mu    sync.Mutex
	calls []call
	// errs makes a method fail.
	errs map[string]error
	// props is what GetProperties returns.
	props *prot.PropertiesV2
	// afterRan counts WaitForProcess after-callbacks that ran.
	afterRan int
}

func (g *recordingGuest) record(c call) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, c)
	return g.errs[c.Method]
}

func (g *recordingGuest) takeCalls() []call {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.calls
	g.calls = nil
	return c
}

func (g *recordingGuest) CreateContainer(_ context.Context, id string, s *prot.VMHostedContainerSettingsV2) error {
	return g.record(call{Method: "CreateContainer", ID: id, Settings: s})
}

func (g *recordingGuest) ShutdownContainer(_ context.Context, id string, graceful bool) (func(), error) {
	return nil, g.record(call{Method: "ShutdownContainer", ID: id, Graceful: graceful})
}

func (g *recordingGuest) ShutdownUVM(context.Context) error {
	return g.record(call{Method: "ShutdownUVM"})
}

func (g *recordingGuest) ExecuteProcess(_ context.Context, id string, p *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error) {
	return 312, g.record(call{Method: "ExecuteProcess", ID: id, Params: p, Ports: ports})
}

func (g *recordingGuest) WaitForProcess(_ context.Context, id string, pid uint32, timeout time.Duration) (uint32, func(), error) {
	err := g.record(call{Method: "WaitForProcess", ID: id, PID: pid, Timeout: timeout})
	after := func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.afterRan++
	}
	return 137, after, err
}

func (g *recordingGuest) SignalProcess(_ context.Context, id string, pid uint32, sig int) error {
	return g.record(call{Method: "SignalProcess", ID: id, PID: pid, Signal: sig})
}

func (g *recordingGuest) ResizeConsole(_ context.Context, id string, pid uint32, h, w uint16) error {
	return g.record(call{Method: "ResizeConsole", ID: id, PID: pid, Height: h, Width: w})
}

func (g *recordingGuest) GetProperties(_ context.Context, id string, q *prot.PropertyQuery) (*prot.PropertiesV2, error) {
	err := g.record(call{Method: "GetProperties", ID: id, Query: q})
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.props, err
}

func (g *recordingGuest) ModifySettings(_ context.Context, id string, r *prot.ModificationRequest) error {
	return g.record(call{Method: "ModifySettings", ID: id, Modify: r})
}

func (g *recordingGuest) DeleteContainerState(_ context.Context, id string) error {
	return g.record(call{Method: "DeleteContainerState", ID: id})
}

var _ handlers.Guest = (*recordingGuest)(nil)

// harness is a negotiated connection to a bridge serving the handlers
// over a recording guest.
type harness struct {
	t      testing.TB
	g      *recordingGuest
	b      *bridge.Bridge
	host   net.Conn
	r      *bufio.Reader
	nextID uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	l := logrus.New()
	l.SetOutput(io.Discard)
	g := &recordingGuest{errs: map[string]error{},
		props: &prot.PropertiesV2{ProcessList: []prot.ProcessDetails{{ProcessID: 312}, {ProcessID: 401}}}}
	mux := bridge.NewMux()
	handlers.Register(mux, g)
	b := bridge.New(bridge.Config{Mux: mux, EnableV4: true, Capabilities: prot.LinuxCapabilities(), Log: logrus.NewEntry(l)})
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "sock")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	done := make(chan struct{})
	go func() {
		_ = b.Serve(context.Background(), conns[0])
		close(done)
	}()
	h := &harness{t: t, g: g, b: b, host: conns[1], r: bufio.NewReader(conns[1])}
	t.Cleanup(func() {
		conns[1].Close()
		<-done
		b.Wait()
	})
	resp := h.roundTrip(prot.ComputeSystemNegotiateProtocolV1, []byte(`{"MinimumVersion":4,"MaximumVersion":4}`))
	if resp.Result != 0 {
		t.Fatalf("negotiate: %+v", resp)
	}
	return h
}

// sendRaw sends a request and returns its id.
func (h *harness) sendRaw(typ prot.MessageIdentifier, body []byte) uint64 {
	h.t.Helper()
	id := h.nextID
	h.nextID++
	buf := make([]byte, prot.HeaderSize+len(body))
	prot.Header{Type: typ, Size: uint32(len(buf)), ID: id}.Encode(buf)
	copy(buf[prot.HeaderSize:], body)
	if _, err := h.host.Write(buf); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// reply is a decoded response frame.
type reply struct {
	prot.Header
	Body []byte
	prot.MessageResponseBase
}

func (h *harness) read() reply {
	h.t.Helper()
	_ = h.host.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hdr [prot.HeaderSize]byte
	if _, err := io.ReadFull(h.r, hdr[:]); err != nil {
		h.t.Fatalf("read: %v", err)
	}
	hd := prot.DecodeHeader(hdr[:])
	if err := hd.CheckSize(prot.MaxHostMessageSize); err != nil {
		h.t.Fatalf("guest sent a frame the host rejects: %v", err)
	}
	body := make([]byte, hd.BodySize())
	if _, err := io.ReadFull(h.r, body); err != nil {
		h.t.Fatal(err)
	}
	r := reply{Header: hd, Body: body}
	if err := json.Unmarshal(body, &r.MessageResponseBase); err != nil {
		h.t.Fatalf("response body %s: %v", body, err)
	}
	return r
}

// roundTrip sends a request and reads its response, which must be next.
func (h *harness) roundTrip(typ prot.MessageIdentifier, body []byte) reply {
	h.t.Helper()
	id := h.sendRaw(typ, body)
	r := h.read()
	if r.Type != prot.ResponseFor(typ) || r.ID != id {
		h.t.Fatalf("got %s id %d, want %s id %d", r.Type, r.ID, prot.ResponseFor(typ), id)
	}
	return r
}

// golden reads a golden example stored with the prot package
// (service/gcs/prot/testdata/golden).
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "prot", "testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitCalls polls until the guest has recorded n calls and returns them.
func (h *harness) waitCalls(n int) []call {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.g.mu.Lock()
		got := len(h.g.calls)
		h.g.mu.Unlock()
		if got >= n {
			return h.g.takeCalls()
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("guest saw %d calls, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func describe(c []call) string {
	b, _ := json.Marshal(c)
	return fmt.Sprintf("%s", b)
}
