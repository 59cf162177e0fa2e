package hostclient_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// guestEnd is the far end of a client's connection, driven by the test.
type guestEnd struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func newPair(t *testing.T) (*hostclient.Client, *guestEnd) {
	t.Helper()
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
	c := hostclient.New(conns[0])
	t.Cleanup(func() { c.Close(); conns[1].Close() })
	return c, &guestEnd{t: t, conn: conns[1], r: bufio.NewReader(conns[1])}
}

func (g *guestEnd) readRequest() (prot.Header, []byte) {
	g.t.Helper()
	_ = g.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hdr [prot.HeaderSize]byte
	if _, err := io.ReadFull(g.r, hdr[:]); err != nil {
		g.t.Fatal(err)
	}
	h := prot.DecodeHeader(hdr[:])
	body := make([]byte, h.BodySize())
	if _, err := io.ReadFull(g.r, body); err != nil {
		g.t.Fatal(err)
	}
	return h, body
}

func (g *guestEnd) write(typ prot.MessageIdentifier, id uint64, body []byte) {
	g.t.Helper()
	buf := make([]byte, prot.HeaderSize+len(body))
	prot.Header{Type: typ, Size: uint32(len(buf)), ID: id}.Encode(buf)
	copy(buf[prot.HeaderSize:], body)
	if _, err := g.conn.Write(buf); err != nil {
		g.t.Fatal(err)
	}
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRequestsAsHostsSend: ids count from 0, bodies are json.Encoder
// output (trailing newline, no HTML escaping), responses are matched.
func TestRequestsAsHostsSend(t *testing.T) {
	c, g := newPair(t)
	done := make(chan error, 1)
	go func() {
		done <- c.Modify(ctx30(t), prot.NullContainerID, "Add", "MappedDirectory", &prot.LCOWMappedDirectory{MountPath: "/a<b>&c", Port: 564})
	}()
	h, body := g.readRequest()
	want := `{"ContainerId":"00000000-0000-0000-0000-000000000000","ActivityId":"00000000-0000-0000-0000-000000000000","Request":{"RequestType":"Add","ResourceType":"MappedDirectory","Settings":{"MountPath":"/a\u003cb\u003e\u0026c","Port":564}}}` + "\n"
	if h.Type != prot.ComputeSystemModifySettingsV1 || h.ID != 0 || string(body) != want {
		t.Fatalf("got %s id %d %q", h.Type, h.ID, body)
	}
	g.write(prot.ResponseFor(h.Type), 0, []byte(`{"Result":0}`))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := c.WaitForProcess(ctx30(t), "c1", 7, prot.InfiniteWaitTimeout)
		done <- err
	}()
	h, body = g.readRequest()
	if h.ID != 1 || !strings.HasSuffix(string(body), "\n") || !strings.Contains(string(body), `"TimeoutInMs":4294967295`) {
		t.Fatalf("second request id %d %q", h.ID, body)
	}
	g.write(prot.ResponseFor(h.Type), 1, []byte(`{"Result":-1070137074,"ErrorMessage":"gone"}`))
	err := <-done
	var re *hostclient.RPCError
	if !errors.As(err, &re) || re.Result != prot.HrVmcomputeSystemNotFound || re.Message != "gone" || hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		t.Fatalf("error %v", err)
	}
}

// TestStrictness: what a real host treats as fatal ends the client.
func TestStrictness(t *testing.T) {
	big := make([]byte, prot.MaxHostMessageSize)
	tests := []struct {
		name string
		send func(g *guestEnd, id uint64)
	}{
		{"unknown id", func(g *guestEnd, id uint64) {
			g.write(prot.ResponseFor(prot.ComputeSystemStartV1), id+100, []byte(`{"Result":0}`))
		}},
		{"wrong response type", func(g *guestEnd, id uint64) {
			g.write(prot.ResponseFor(prot.ComputeSystemCreateV1), id, []byte(`{"Result":0}`))
		}},
		{"frame over 64 KiB", func(g *guestEnd, id uint64) { g.write(prot.ResponseFor(prot.ComputeSystemStartV1), id, big) }},
		{"unknown notification", func(g *guestEnd, id uint64) { g.write(0x30100201, 0, []byte(`{}`)) }},
		{"request from the guest", func(g *guestEnd, id uint64) { g.write(prot.ComputeSystemStartV1, id, []byte(`{}`)) }},
		{"undecodable response", func(g *guestEnd, id uint64) {
			g.write(prot.ResponseFor(prot.ComputeSystemStartV1), id, []byte(`{"Result":3224830222}`))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, g := newPair(t)
			done := make(chan error, 1)
			go func() { done <- c.Start(ctx30(t), "c1") }()
			h, _ := g.readRequest()
			tc.send(g, h.ID)
			if err := <-done; err == nil {
				t.Fatal("call succeeded")
			}
			select {
			case <-c.Done():
			case <-ctx30(t).Done():
				t.Fatal("client still up")
			}
			if !errors.Is(c.Err(), hostclient.ErrProtocol) {
				t.Fatalf("Err %v, want a protocol violation", c.Err())
			}
		})
	}
}

// TestNotificationsAndLateReplies: notifications are delivered; a reply to
// an abandoned call is consumed without ending the connection.
func TestNotificationsAndLateReplies(t *testing.T) {
	c, g := newPair(t)
	g.write(prot.ComputeSystemNotificationV1, 0, []byte(`{"ContainerId":"c1","ActivityId":"","Type":"ForcedExit","Operation":"None","Result":0}`))
	select {
	case n := <-c.Notifications():
		if n.ContainerID != "c1" || n.Type != prot.NtForcedExit {
			t.Fatalf("notification %+v", n)
		}
	case <-ctx30(t).Done():
		t.Fatal("no notification")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx, "c1") }()
	h, _ := g.readRequest()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v", err)
	}
	g.write(prot.ResponseFor(h.Type), h.ID, []byte(`{"Result":0}`))
	go func() {
		var resp prot.ContainerExecuteProcessResponse
		done <- c.Call(ctx30(t), prot.ComputeSystemExecuteProcessV1, &prot.MessageBase{}, &resp)
	}()
	h2, _ := g.readRequest()
	g.write(prot.ResponseFor(h2.Type), h2.ID, []byte(`{"Result":0,"ProcessId":9}`))
	if err := <-done; err != nil || c.Err() != nil {
		t.Fatalf("after a late reply: %v / %v", err, c.Err())
	}
}
