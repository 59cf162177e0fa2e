package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
)

// TestInitStdoutSurvivesReconnect drops the host end of a container init's
// stdout, as a host does across a live migration, and listens again on the
// same port: the gcs re-dials it, replays the recent output and goes on,
// so no line is lost (duplicates are allowed).
func TestInitStdoutSurvivesReconnect(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	e.create(id, e.spec("sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.01; done"))
	p := e.exec(id, nil, false, true, false)
	port := p.stdio.Ports.StdOut

	last := -1
	r := bufio.NewReader(p.stdio.Conn(hostclient.StdOut))
	for last < 20 {
		n, err := readLine(r)
		if err != nil {
			t.Fatal(err)
		}
		last = n
	}
	// The host goes away and comes back on the same port.
	// The gcs notices on its next write and redials until the listener
	// below exists; nothing needs to happen in between.
	p.stdio.Conn(hostclient.StdOut).Close()
	l, err := e.g.Transport.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	var (
		r2   *bufio.Reader
		conn net.Conn
	)
	go func() {
		c, err := l.Accept()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			conn, r2 = c, bufio.NewReader(c)
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the gcs did not re-dial the init's stdout")
	}
	// The replay starts at or before the first line we missed; from there
	// the lines are consecutive.
	want := last + 1
	for seen := 0; seen < 50; {
		n, err := readLine(r2)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case n < want:
			continue // replayed output the host already had
		case n == want:
			want++
			seen++
		default:
			t.Fatalf("line %d missing after the reconnect (got %d)", want, n)
		}
	}
	// A host drains the stream to EOF and closes its end.
	go func() {
		_, _ = io.Copy(io.Discard, r2)
		conn.Close()
	}()
	if err := e.c.Shutdown(ctxT(t, 30e9), id, true); err != nil {
		t.Fatal(err)
	}
	if code := e.wait(id, p.pid); code != 137 {
		t.Fatalf("exit code %d", code)
	}
	e.notification(id)
}

func readLine(r *bufio.Reader) (int, error) {
	s, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(s)
	if len(f) != 2 || f[0] != "line" {
		// A replay may start in the middle of a line.
		return -1, nil
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("bad line %q", s)
	}
	return n, nil
}
