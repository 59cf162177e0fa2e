package stdio

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// guard bounds every blocking step of a test so a regression fails instead
// of hanging the run; it is not a performance assertion.
const guard = 60 * time.Second

// testHost plays the Windows host: it listens on stdio ports through the
// unix transport, the way the GCS's peer does over vsock.
type testHost struct {
	t    testing.TB
	tr   *transport.Unix
	next uint32
}

func newTestHost(t testing.TB) *testHost {
	t.Helper()
	// Short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "gcsstdio")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &testHost{t: t, tr: transport.NewUnix(dir + "/p"), next: 0x40000001}
}

// listen arms a one-shot listener on a fresh port; the accepted connection
// arrives on the channel. The listener is closed after the accept and at
// the end of the test.
func (h *testHost) listen() (uint32, <-chan *net.UnixConn) {
	h.t.Helper()
	port := h.next
	h.next++
	l, err := h.tr.Listen(port)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { l.Close() })
	ch := make(chan *net.UnixConn, 1)
	go func() {
		defer close(ch)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		h.t.Cleanup(func() { c.Close() })
		ch <- c.(*net.UnixConn)
	}()
	return port, ch
}

// hostSide is the host's ends of one process's stdio.
type hostSide struct {
	In, Out, Err *net.UnixConn
}

// connect listens for the streams in want, runs Connect and collects the
// host's ends.
func (h *testHost) connect(want Streams) (*ConnectionSet, hostSide) {
	h.t.Helper()
	var ports prot.ExecuteProcessVsockStdioRelaySettings
	var chIn, chOut, chErr <-chan *net.UnixConn
	if want.Stdin {
		ports.StdIn, chIn = h.listen()
	}
	if want.Stdout {
		ports.StdOut, chOut = h.listen()
	}
	if want.Stderr {
		ports.StdErr, chErr = h.listen()
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	set, err := Connect(ctx, logging.Discard(), h.tr, ports, want)
	if err != nil {
		h.t.Fatalf("Connect: %v", err)
	}
	var hs hostSide
	for _, p := range []struct {
		ch  <-chan *net.UnixConn
		dst **net.UnixConn
	}{{chIn, &hs.In}, {chOut, &hs.Out}, {chErr, &hs.Err}} {
		if p.ch == nil {
			continue
		}
		select {
		case c := <-p.ch:
			*p.dst = c
		case <-time.After(guard):
			h.t.Fatal("host never accepted a stdio connection")
		}
	}
	return set, hs
}

// drained is what a host reader collected from an output stream.
type drained struct {
	data []byte
	err  error
}

// drain reads c to EOF in the background, then closes it as the host does.
func drain(c net.Conn) <-chan drained {
	ch := make(chan drained, 1)
	go func() {
		b, err := io.ReadAll(c)
		c.Close()
		ch <- drained{b, err}
	}()
	return ch
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitRelay runs r.Wait in the background and fails the test if it does
// not return within the guard.
func waitRelay(t *testing.T, r Relay) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- r.Wait() }()
	return recv(t, ch, "relay Wait")
}

// startCmd starts cmd in its own process group and kills the whole group
// at the end of the test (background children included).
func startCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid = true
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
	})
}

// waitCmd waits for cmd to exit within the guard.
func waitCmd(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	return recv(t, ch, "process exit")
}

// fdCount counts the test process's open descriptors.
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
