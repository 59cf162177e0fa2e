package runc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/runtime/runc"
)

// prepare is create through Runtime.Prepare.
func prepare(t *testing.T, spec *specs.Spec, stdio runtime.StdioFiles) runtime.Container {
	t.Helper()
	id := newID(t)
	b := bundle(t, id, spec)
	c, err := rt.Prepare(ctxT(t), id, b, stdio)
	if err != nil {
		t.Fatalf("prepare %s: %v", id, err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
	return c
}

// runcKnows reports whether runc has state for id.
func runcKnows(t *testing.T, id string) bool {
	_, err := runcCLI(ctxT(t), "state", id)
	return err == nil
}

// TestPrepare covers the deferred create: nothing runs at Prepare; Start
// runs the container in one step; anything that needs the container
// first creates it; a delete before either leaves nothing and ends Wait.
func TestPrepare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// before runs between Prepare and Start; it reports whether the
		// container must exist in runc afterwards.
		before func(t *testing.T, c runtime.Container) bool
	}{
		{"start only", func(t *testing.T, c runtime.Container) bool { return false }},
		{"state creates", func(t *testing.T, c runtime.Container) bool {
			st, err := c.State(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != runtime.StatusCreated || st.Pid != c.Pid() || c.Pid() <= 0 {
				t.Fatalf("state %+v, pid %d", st, c.Pid())
			}
			return true
		}},
		{"ps creates", func(t *testing.T, c runtime.Container) bool {
			pids, err := c.Ps(ctxT(t))
			if err != nil || len(pids) != 1 || pids[0] != c.Pid() {
				t.Fatalf("ps %v (pid %d): %v", pids, c.Pid(), err)
			}
			return true
		}},
		{"materialize creates", func(t *testing.T, c runtime.Container) bool {
			if err := c.Materialize(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPipes(t)
			c := prepare(t, testutil.Spec("/bin/sh", "-c", "cat; echo err >&2; exit 7"), p.child)
			// The driver holds its own copies: the caller closes its ends
			// right away, as after Create.
			p.closeChild()
			if c.Pid() != 0 || runcKnows(t, c.ID()) {
				t.Fatalf("runc ran at Prepare (pid %d)", c.Pid())
			}
			if got := tc.before(t, c); got != runcKnows(t, c.ID()) {
				t.Fatalf("runc knows the container: %v, want %v", !got, got)
			}
			if err := c.Start(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if c.Pid() <= 0 {
				t.Fatalf("pid %d after Start", c.Pid())
			}
			if _, err := p.stdin.WriteString("in\n"); err != nil {
				t.Fatal(err)
			}
			p.stdin.Close()
			if got := readAll(t, p.stdout); got != "in\n" {
				t.Fatalf("stdout %q", got)
			}
			if got := readAll(t, p.stderr); got != "err\n" {
				t.Fatalf("stderr %q", got)
			}
			wait(t, c, 7)
			if err := c.Delete(ctxT(t), true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPrepareDeleteBeforeStart: a container deleted before it ran leaves
// no state, ends Wait and Done with runc.ExitCodeNeverStarted, closes the
// driver's stdio copies (the reader sees EOF) and refuses everything else.
func TestPrepareDeleteBeforeStart(t *testing.T) {
	t.Parallel()
	p := newPipes(t)
	c := prepare(t, testutil.Spec("/bin/true"), p.child)
	p.closeChild()
	done := c.Done()
	if err := c.Delete(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	<-done
	wait(t, c, runc.ExitCodeNeverStarted)
	if got := readAll(t, p.stdout); got != "" {
		t.Fatalf("stdout %q", got)
	}
	if _, err := os.Stat(filepath.Join(stateDir, c.ID())); !os.IsNotExist(err) {
		t.Fatalf("state dir: %v", err)
	}
	if _, err := rt.Get(c.ID()); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
		t.Fatalf("Get after delete: %v", err)
	}
	for name, f := range map[string]func() error{
		"start": func() error { return c.Start(ctxT(t)) },
		"kill":  func() error { return c.Kill(ctxT(t), 9, true) },
		"ps":    func() error { _, err := c.Ps(ctxT(t)); return err },
	} {
		if err := f(); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
			t.Errorf("%s after delete: %v", name, err)
		}
	}
}

// TestPrepareRunFails: a runc run that fails (no such executable) reports
// runc's error from Start and leaves the container deletable.
func TestPrepareRunFails(t *testing.T) {
	t.Parallel()
	c := prepare(t, testutil.Spec("/no/such/binary"), runtime.StdioFiles{})
	err := c.Start(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "no/such/binary") {
		t.Fatalf("start: %v", err)
	}
	if runcKnows(t, c.ID()) {
		t.Fatal("runc kept the failed container")
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	wait(t, c, runc.ExitCodeNeverStarted)
}

// TestPrepareTerminal: runc run --detach hands over the pty as runc create
// does; the console exists from Start on.
func TestPrepareTerminal(t *testing.T) {
	t.Parallel()
	spec := testutil.Spec("/bin/sh", "-c", "tty; exit 4")
	spec.Process.Terminal = true
	c := prepare(t, spec, runtime.StdioFiles{})
	if c.Console() != nil {
		t.Fatal("console before Start")
	}
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	con := c.Console()
	if con == nil {
		t.Fatal("no console after Start")
	}
	if out := readAll(t, con); !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("console output %q", out)
	}
	wait(t, c, 4)
}
