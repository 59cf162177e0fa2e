package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestReconnectKeepsStateAndQueuesNotifications drops the bridge while a
// container runs and a wait is outstanding. The container exits while no
// connection is up: the wait's response and the exit notification must be
// queued and delivered, in that order and with the original request id,
// on the connection the gcs dials next, after which the host renegotiates
// and keeps using the same container.
func TestReconnectKeepsStateAndQueuesNotifications(t *testing.T) {
	// A slow redial keeps the gcs disconnected while the container exits
	// (if it redialled sooner the exit would still be answered on the new
	// connection, only not from the queue).
	g := gcstest.Start(t, gcstest.Options{Args: []string{"-redial-interval", "2s"}})
	c := connect(t, g)
	layer := filepath.Join(t.TempDir(), "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, c: c, layer: layer}
	id := newID(t)
	// The init exits when the host writes to its stdin, which the host
	// does while the bridge is down (stdio runs on its own connections).
	e.create(id, e.spec("sh", "-c", "read go; exit 5"))
	p := e.exec(id, nil, true, false, false)

	type result struct {
		code uint32
		err  error
	}
	waited := make(chan result, 1)
	go func() {
		code, err := c.WaitForProcess(ctxT(t, 60*time.Second), id, p.pid, prot.InfiniteWaitTimeout)
		waited <- result{code, err}
	}()
	// The wait must be on the gcs's socket before the connection drops:
	// data written before the close is still read by the gcs.
	eventually(t, "the wait request written", func() bool { return c.Sent() == 1 })
	if err := c.Migrate(); err != nil {
		t.Fatal(err)
	}
	// Now let the init exit, and see it gone (reaped) before taking the
	// gcs's next connection.
	stdin := p.stdio.Conn(hostclient.StdIn)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	procDir, err := g.Root(fmt.Sprintf("/proc/%d", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the init reaped", func() bool {
		_, err := os.Stat(procDir)
		return os.IsNotExist(err)
	})

	conn, err := g.AcceptConn(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.ResumeOn(conn)
	if _, err := c.Negotiate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("renegotiate: %v", err)
	}
	select {
	case r := <-waited:
		if r.err != nil || r.code != 5 {
			t.Fatalf("wait answered across the reconnect: %d, %v", r.code, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the outstanding wait was never answered")
	}
	n := e.notification(id)
	if n.Type != prot.NtUnexpectedExit {
		t.Fatalf("notification %+v", n)
	}
	// State survived: the init is still answerable, and the container can be
	// deleted on the new connection.
	if code := e.wait(id, p.pid); code != 5 {
		t.Fatalf("wait after reconnect: %d", code)
	}
	if err := c.DeleteContainerState(ctxT(t, 30*time.Second), id); err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("client saw a protocol violation: %v", err)
	}
}
