package e2e

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

var idCounter atomic.Int64

// newID returns a containerd-like unique id.
func newID(t *testing.T) string {
	return fmt.Sprintf("%016x%048x", time.Now().UnixNano(), idCounter.Add(1))
}

// env is a connected gcs able to run containers, with a busybox layer.
type env struct {
	t     *testing.T
	g     *gcstest.GCS
	c     *hostclient.Client
	layer string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	g := gcstest.Start(t, gcstest.Options{Containers: true})
	c := connect(t, g)
	layer := filepath.Join(t.TempDir(), "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, g: g, c: c, layer: layer}
}

func bundleOf(id string) string { return "/run/gcs/c/" + id }

// spec returns a standalone container spec whose root is the busybox layer.
func (e *env) spec(args ...string) *specs.Spec {
	s := testutil.Spec(args...)
	s.Hostname = ""
	s.Root = &specs.Root{Path: e.layer, Readonly: true}
	return s
}

// create sends Create for a standalone container and registers its
// deletion.
func (e *env) create(id string, s *specs.Spec) {
	e.t.Helper()
	ctx := ctxT(e.t, 60*time.Second)
	if err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundleOf(id), "", s)); err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	e.t.Cleanup(func() {
		_ = e.c.DeleteContainerState(context.Background(), id)
	})
	if err := e.c.Start(ctx, id); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
}

// proc is a started process and its host-side stdio.
type proc struct {
	pid   uint32
	stdio *hostclient.Stdio
}

// exec starts the init (p == nil) or an exec'd process with the streams
// asked for, and accepts its stdio connections.
func (e *env) exec(id string, p *specs.Process, stdin, stdout, stderr bool) *proc {
	e.t.Helper()
	ctx := ctxT(e.t, 60*time.Second)
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, stdin, stdout, stderr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(st.Close)
	params := &prot.ProcessParameters{CreateStdInPipe: stdin, CreateStdOutPipe: stdout, CreateStdErrPipe: stderr, OCIProcess: p}
	pid, err := e.c.ExecuteProcess(ctx, id, params, st.Ports)
	if err != nil {
		e.t.Fatalf("execute process in %s: %v", id, err)
	}
	if err := st.Accept(ctx); err != nil {
		e.t.Fatal(err)
	}
	return &proc{pid: pid, stdio: st}
}

func (e *env) wait(id string, pid uint32) uint32 {
	e.t.Helper()
	code, err := e.c.WaitForProcess(ctxT(e.t, 60*time.Second), id, pid, prot.InfiniteWaitTimeout)
	if err != nil {
		e.t.Fatalf("wait %s/%d: %v", id, pid, err)
	}
	return code
}

func (e *env) notification(id string) *prot.ContainerNotification {
	e.t.Helper()
	select {
	case n := <-e.c.Notifications():
		if n.ContainerID != id {
			e.t.Fatalf("notification for %s, want %s", n.ContainerID, id)
		}
		return n
	case <-time.After(30 * time.Second):
		e.t.Fatalf("no notification for %s", id)
	}
	return nil
}

func readAll(t *testing.T, st *hostclient.Stdio, i int) string {
	t.Helper()
	b, err := io.ReadAll(st.Conn(i))
	// A host closes its end once it has drained a stream.
	st.Conn(i).Close()
	if err != nil {
		t.Fatalf("read stream %d: %v", i, err)
	}
	return string(b)
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}
