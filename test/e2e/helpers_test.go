package e2e

import (
	"context"
	"fmt"
	"io"
	"os/exec"
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
	g := gcstest.Start(t, gcstest.Options{})
	c := connect(t, g)
	layer := filepath.Join(t.TempDir(), "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, g: g, c: c, layer: layer}
}

func bundleOf(id string) string { return "/run/gcs/c/" + id }

func rootfsOf(id string) string  { return bundleOf(id) + "/rootfs" }
func scratchOf(id string) string { return bundleOf(id) + "/scratch/" + id }

// spec returns a standalone container spec; its root is the overlay that
// create mounts.
func (e *env) spec(args ...string) *specs.Spec {
	s := testutil.Spec(args...)
	s.Hostname = ""
	s.Root = &specs.Root{Path: "rootfs"}
	return s
}

// create does what a shim v1 host does for a standalone container:
// CombinedLayers Add of the busybox layer with a scratch in the bundle,
// Create, Start; and registers the teardown (CombinedLayers Remove, then
// DeleteContainerState).
func (e *env) create(id string, s *specs.Spec) {
	e.t.Helper()
	ctx := ctxT(e.t, 60*time.Second)
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: scratchOf(id)}
	if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		e.t.Fatalf("combined layers for %s: %v", id, err)
	}
	s.Root.Path = rootfsOf(id)
	if err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), s)); err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	e.t.Cleanup(func() {
		_ = e.c.Modify(context.Background(), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
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

func procArgs(args ...string) *specs.Process {
	return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}

// runOnce runs one container printing to stdout and exiting with code,
// checks what a host sees, and tears it down; for use from goroutines.
func (e *env) runOnce(id, script, wantOut string, code int) error {
	ctx := ctxT(e.t, 120*time.Second)
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: scratchOf(id)}
	if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		return err
	}
	s := e.spec("sh", "-c", fmt.Sprintf("%s; exit %d", script, code))
	s.Root.Path = rootfsOf(id)
	if err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), s)); err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	if err := e.c.Start(ctx, id); err != nil {
		return err
	}
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, true, false)
	if err != nil {
		return err
	}
	defer st.Close()
	pid, err := e.c.ExecuteProcess(ctx, id, &prot.ProcessParameters{CreateStdOutPipe: true}, st.Ports)
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	if err := st.Accept(ctx); err != nil {
		return err
	}
	out, err := io.ReadAll(st.Conn(hostclient.StdOut))
	st.Conn(hostclient.StdOut).Close()
	if err != nil || string(out) != wantOut {
		return fmt.Errorf("%s: stdout %q (%v), want %q", id, out, err, wantOut)
	}
	got, err := e.c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout)
	if err != nil || got != uint32(code) {
		return fmt.Errorf("%s: exit %d (%v), want %d", id, got, err, code)
	}
	// Teardown as a v1 host does it.
	if err := e.c.Shutdown(ctx, id, false); err != nil {
		return fmt.Errorf("%s: shutdown of exited container: %v", id, err)
	}
	if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)}); err != nil {
		return err
	}
	return e.c.DeleteContainerState(ctx, id)
}

// runFull is runOnce plus consuming the container's notification.
func (e *env) runFull(id string) error {
	if err := e.runOnce(id, "echo hi", "hi\n", 0); err != nil {
		return err
	}
	select {
	case n := <-e.c.Notifications():
		if n.ContainerID != id {
			return fmt.Errorf("notification for %s, want %s", n.ContainerID, id)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no notification for %s", id)
	}
}

// runCmd runs a command to completion and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
