package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// The tests in this file drive the gcs step by step as hcsshim's host
// client does (internal/gcs: Container, Process; the shim's teardown in
// cmd/containerd-shim-runhcs-v1/task_hcs.go), and judge each answer by that
// client's own tolerance rules: a step fails here exactly when the real
// client would have returned an error to the shim, or would have waited for
// something that never comes.

// Tolerance rules of hcsshim's host client.
const (
	// hostTeardownTimeout is how long the shim waits for the exit
	// notification after a successful Shutdown or Terminate (task_hcs.go,
	// close) before it gives up and escalates.
	hostTeardownTimeout = 30 * time.Second
	// hostExitProbeTimeoutMs is the timeout of the WaitForProcess a reopened
	// process is probed with after a resume (internal/gcs/process.go,
	// startExitWatch). A clean answer means "already exited, here is the
	// code"; any error means "still running".
	hostExitProbeTimeoutMs = 50
)

// hostShutdown is Container.Shutdown (force false) or Container.Terminate
// (force true): the client ignores only 0xC037010E (the container does not
// exist); any other failure is returned to the shim.
func hostShutdown(ctx context.Context, c *hostclient.Client, id string, force bool) error {
	err := c.Shutdown(ctx, id, force)
	if err != nil && hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		return err
	}
	return nil
}

// hostProbeExit is the exit probe of a reopened process: exited reports
// whether the client takes the answer as the process's exit (then code is
// what it reports); otherwise it goes on waiting for a WaitForProcess answer
// of the previous connection, which for an already-waited process never
// comes.
func hostProbeExit(ctx context.Context, c *hostclient.Client, id string, pid uint32) (code uint32, exited bool, err error) {
	code, err = c.WaitForProcess(ctx, id, pid, hostExitProbeTimeoutMs)
	return code, err == nil, err
}

// hostNotification waits, as the shim does after a successful shutdown, for
// the container's exit notification. It reports false when the shim would
// have timed out.
func hostNotification(t *testing.T, c *hostclient.Client, id string) (*prot.ContainerNotification, bool) {
	t.Helper()
	timer := time.NewTimer(hostTeardownTimeout)
	defer timer.Stop()
	select {
	case n := <-c.Notifications():
		if n.ContainerID != id {
			t.Fatalf("notification for %s, want %s", n.ContainerID, id)
		}
		return n, true
	case <-timer.C:
		return nil, false
	}
}

// noMoreNotifications fails if a notification is pending: a second one for
// the same container is fatal to the host's bridge. A round trip first makes
// sure anything queued before it has arrived.
func noMoreNotifications(t *testing.T, c *hostclient.Client) {
	t.Helper()
	if _, err := c.DumpStacks(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-c.Notifications():
		t.Fatalf("second notification %+v: the host's bridge would fail", n)
	default:
	}
}

// TestHostShutdownAfterExit: the shim tears down a container whose init
// exited by itself with ShutdownGraceful, and with ShutdownForced when that
// fails; both must succeed by the client's rule, and the exit notification
// the shim then waits for is the one already sent, never a second one.
func TestHostShutdownAfterExit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		force bool
	}{
		{"shutdown", false},
		{"terminate", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := newID(t)
			e.create(id, e.spec("sh", "-c", "exit 3"))
			p := e.exec(id, nil, false, false, false)
			if code := e.wait(id, p.pid); code != 3 {
				t.Fatalf("exit code %d", code)
			}
			if n, ok := hostNotification(t, e.c, id); !ok || n.Type != prot.NtUnexpectedExit {
				t.Fatalf("notification after the init's wait: %+v (arrived %v)", n, ok)
			}
			ctx := ctxT(t, 60*time.Second)
			if err := hostShutdown(ctx, e.c, id, tc.force); err != nil {
				t.Fatalf("the host client fails this step: %v", err)
			}
			// Again, the other way: the shim may send both.
			if err := hostShutdown(ctx, e.c, id, !tc.force); err != nil {
				t.Fatalf("the host client fails the second step: %v", err)
			}
			// The container is still there until deleted.
			if code, err := e.c.WaitForProcess(ctx, id, p.pid, 0); err != nil || code != 3 {
				t.Fatalf("wait after shutdown: %d, %v", code, err)
			}
			noMoreNotifications(t, e.c)
		})
	}
}

// TestHostNeverStartedContainerNotification: a container created but never
// started (or started without its init) and then shut down must send the
// exit notification the shim waits for, once.
func TestHostNeverStartedContainerNotification(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start bool
		force bool
		want  prot.NotificationType
	}{
		{"created/shutdown", false, false, prot.NtGracefulExit},
		{"created/terminate", false, true, prot.NtForcedExit},
		{"started-without-init/shutdown", true, false, prot.NtGracefulExit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := newID(t)
			ctx := ctxT(t, 60*time.Second)
			layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: scratchOf(id)}
			if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
				t.Fatal(err)
			}
			s := e.spec("sleep", "1000")
			s.Root.Path = rootfsOf(id)
			if err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), s)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = e.c.Modify(context.Background(), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
				_ = e.c.DeleteContainerState(context.Background(), id)
			})
			if tc.start {
				if err := e.c.Start(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if err := hostShutdown(ctx, e.c, id, tc.force); err != nil {
				t.Fatalf("the host client fails the shutdown: %v", err)
			}
			n, ok := hostNotification(t, e.c, id)
			if !ok {
				t.Fatalf("no exit notification within the shim's %s", hostTeardownTimeout)
			}
			if n.Type != tc.want || n.Operation != prot.AoNone {
				t.Fatalf("notification %+v, want type %s", n, tc.want)
			}
			// The shim's teardown goes on: a later Terminate succeeds and
			// sends nothing more; then the state is deleted.
			if err := hostShutdown(ctx, e.c, id, true); err != nil {
				t.Fatalf("the host client fails the terminate: %v", err)
			}
			if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)}); err != nil {
				t.Fatal(err)
			}
			if err := e.c.DeleteContainerState(ctx, id); err != nil {
				t.Fatal(err)
			}
			noMoreNotifications(t, e.c)
		})
	}
}

// TestHostResizeExternalConsole: Process.ResizeConsole on a utility VM
// process with a terminal (shimdiag exec -t) must succeed and reach the pty.
func TestHostResizeExternalConsole(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 60*time.Second)
	st, pid := externalConsole(ctx, t, e, "read line; stty size; exit 4")
	// The client returns every non-zero result of ResizeConsole.
	if err := e.c.ResizeConsole(ctx, prot.NullContainerID, pid, 33, 77); err != nil {
		t.Fatalf("the host client fails the resize: %v", err)
	}
	if _, err := io.WriteString(st.Conn(hostclient.StdIn), "go\n"); err != nil {
		t.Fatal(err)
	}
	out := readAll(t, st, hostclient.StdOut)
	mustContain(t, out, "33 77")
	if code, err := e.c.WaitForProcess(ctx, prot.NullContainerID, pid, prot.InfiniteWaitTimeout); err != nil || code != 4 {
		t.Fatalf("wait: %d, %v", code, err)
	}
	// Once it has exited a resize is a silent no-op, as for containers.
	if err := e.c.ResizeConsole(ctx, prot.NullContainerID, pid, 10, 10); err != nil {
		t.Fatalf("resize after exit: %v", err)
	}
	// Unknown processes and processes without a terminal are refused.
	if err := e.c.ResizeConsole(ctx, prot.NullContainerID, pid+100000, 10, 10); hostclient.ResultOf(err) != prot.HrErrNotFound {
		t.Fatalf("resize of an unknown process: %v", err)
	}
}

// TestHostProbeAfterReconnect: a process exits and its wait is answered;
// then the bridge drops and the host resumes on the next connection and
// reopens the process, probing it with a short WaitForProcess. The probe
// must report the exit code, or the host never learns it.
func TestHostProbeAfterReconnect(t *testing.T) {
	for _, tc := range []struct {
		name      string
		container bool
	}{
		{"external", false},
		{"exec", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := ctxT(t, 60*time.Second)
			id := prot.NullContainerID
			var pid uint32
			if tc.container {
				id = newID(t)
				e.create(id, e.spec("sleep", "1000"))
				e.exec(id, nil, false, false, false)
				pid = e.exec(id, procArgs("sh", "-c", "exit 7"), false, false, false).pid
			} else {
				var err error
				pid, err = e.c.ExecuteProcess(ctx, id, &prot.ProcessParameters{CommandArgs: []string{"sh", "-c", "exit 7"}, Environment: map[string]string{"PATH": "/bin:/usr/bin"}}, prot.ExecuteProcessVsockStdioRelaySettings{})
				if err != nil {
					t.Fatal(err)
				}
			}
			if code := e.wait(id, pid); code != 7 {
				t.Fatalf("exit code %d", code)
			}

			if err := e.c.Migrate(); err != nil {
				t.Fatal(err)
			}
			conn, err := e.g.AcceptConn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e.c.ResumeOn(conn)
			if _, err := e.c.Negotiate(ctx); err != nil {
				t.Fatalf("renegotiate: %v", err)
			}
			code, exited, err := hostProbeExit(ctx, e.c, id, pid)
			if !exited {
				t.Fatalf("probe of the exited process: %v; the host would wait forever", err)
			}
			if code != 7 {
				t.Fatalf("probe reports exit code %d, want 7", code)
			}
		})
	}
}

// TestHostExecChurnKeepsMemoryFlat: 1,000 short external processes, each
// waited for as the host does. The statuses retained for a resumed host are
// bounded: the newest is still answerable, the oldest is gone, and the
// gcs's resident memory after 1,000 is about what it was after 100.
func TestHostExecChurnKeepsMemoryFlat(t *testing.T) {
	const (
		total  = 1000
		warmup = 100
		// slack absorbs the runtime's warm-up: the gcs's RSS rises by about
		// 3 MiB over the first 400 execs and then stays within 0.2 MiB up to
		// 3,000. A leaked goroutine, relay or file per exec (8 KiB or more
		// each) would exceed it.
		slack = 8 << 20
	)
	e := newEnv(t)
	ctx := ctxT(t, 5*time.Minute)
	params := &prot.ProcessParameters{CommandArgs: []string{"/bin/true"}}
	pids := make([]uint32, 0, total)
	var rssWarm int64
	for i := 0; i < total; i++ {
		pid, err := e.c.ExecuteProcess(ctx, prot.NullContainerID, params, prot.ExecuteProcessVsockStdioRelaySettings{})
		if err != nil {
			t.Fatalf("exec %d: %v", i, err)
		}
		if code, err := e.c.WaitForProcess(ctx, prot.NullContainerID, pid, prot.InfiniteWaitTimeout); err != nil || code != 0 {
			t.Fatalf("wait %d: %d, %v", i, code, err)
		}
		pids = append(pids, pid)
		if i+1 == warmup {
			var err error
			if rssWarm, err = e.g.RSS(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rss, err := e.g.RSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gcs RSS after %d execs: %d KiB; after %d: %d KiB", warmup, rssWarm>>10, total, rss>>10)
	if rss-rssWarm > slack {
		t.Errorf("gcs RSS grew from %d KiB to %d KiB over %d execs", rssWarm>>10, rss>>10, total-warmup)
	}
	if _, exited, err := hostProbeExit(ctx, e.c, prot.NullContainerID, pids[total-1]); !exited {
		t.Errorf("the newest exited process is not retained: %v", err)
	}
	if _, err := e.c.WaitForProcess(ctx, prot.NullContainerID, pids[0], 0); hostclient.ResultOf(err) != prot.HrErrNotFound {
		t.Errorf("the oldest of %d exited processes is still retained: %v", total, err)
	}
}
