package e2e

import (
	"bytes"
	"crypto/sha256"
	"io"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

func TestContainerRunsAndExits(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	e.create(id, e.spec("sh", "-c", "echo hello out; echo hello err >&2; exit 3"))
	p := e.exec(id, nil, false, true, true)
	if out := readAll(t, p.stdio, hostclient.StdOut); out != "hello out\n" {
		t.Fatalf("stdout %q", out)
	}
	if out := readAll(t, p.stdio, hostclient.StdErr); out != "hello err\n" {
		t.Fatalf("stderr %q", out)
	}
	if code := e.wait(id, p.pid); code != 3 {
		t.Fatalf("exit code %d", code)
	}
	n := e.notification(id)
	if n.Type != prot.NtUnexpectedExit || n.Operation != prot.AoNone || n.Result != 0 {
		t.Fatalf("notification %+v", n)
	}
	// The init stays answerable until DeleteContainerState.
	if code := e.wait(id, p.pid); code != 3 {
		t.Fatalf("second wait: exit code %d", code)
	}
	if err := e.c.DeleteContainerState(ctxT(t, 30e9), id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.WaitForProcess(ctxT(t, 30e9), id, p.pid, 0); hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		t.Fatalf("wait after delete: %v", err)
	}
}

func TestStdinEcho(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	e.create(id, e.spec("cat"))
	p := e.exec(id, nil, true, true, false)
	if _, err := p.stdio.Conn(hostclient.StdIn).Write([]byte("ping over vsock\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.stdio.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if out := readAll(t, p.stdio, hostclient.StdOut); out != "ping over vsock\n" {
		t.Fatalf("stdout %q", out)
	}
	if code := e.wait(id, p.pid); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	e.notification(id)
}

func TestLargeStdoutIntact(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	// 64 MiB of a repeating pattern, generated inside the container.
	const size = 64 << 20
	e.create(id, e.spec("sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123 | head -c 67108864"))
	p := e.exec(id, nil, false, true, false)
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123\n")
	want := sha256.New()
	for n := 0; n < size; n += len(line) {
		k := min(len(line), size-n)
		want.Write(line[:k])
	}
	got := sha256.New()
	n, err := io.Copy(got, p.stdio.Conn(hostclient.StdOut))
	p.stdio.Conn(hostclient.StdOut).Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("received %d bytes, checksum match %v", n, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	if code := e.wait(id, p.pid); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	e.notification(id)
}

func TestSignalsAndShutdown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		act      func(e *env, id string, pid uint32) error
		wantCode uint32
		wantType prot.NotificationType
	}{
		{"signal-term", func(e *env, id string, pid uint32) error {
			return e.c.SignalProcess(ctxT(e.t, 30e9), id, pid, 15)
		}, 143, prot.NtGracefulExit},
		{"signal-kill", func(e *env, id string, pid uint32) error {
			return e.c.SignalProcess(ctxT(e.t, 30e9), id, pid, 9)
		}, 137, prot.NtForcedExit},
		{"signal-default-is-kill", func(e *env, id string, pid uint32) error {
			return e.c.SignalProcess(ctxT(e.t, 30e9), id, pid, 0)
		}, 137, prot.NtForcedExit},
		{"signal-usr1-unexpected", func(e *env, id string, pid uint32) error {
			return e.c.SignalProcess(ctxT(e.t, 30e9), id, pid, 10)
		}, 138, prot.NtUnexpectedExit},
		{"shutdown-graceful", func(e *env, id string, pid uint32) error {
			return e.c.Shutdown(ctxT(e.t, 30e9), id, false)
		}, 143, prot.NtGracefulExit},
		{"shutdown-forced", func(e *env, id string, pid uint32) error {
			return e.c.Shutdown(ctxT(e.t, 30e9), id, true)
		}, 137, prot.NtForcedExit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := newID(t)
			// Without its own pid namespace the init is not a namespace
			// init, so signals take their default action (a namespace's
			// pid 1 ignores signals it has no handler for).
			s := e.spec("sh", "-c", "echo ready; exec sleep 1000")
			s.Linux.Namespaces = withoutNamespace(s.Linux.Namespaces, specs.PIDNamespace)
			e.create(id, s)
			p := e.exec(id, nil, false, true, false)
			buf := make([]byte, 6)
			if _, err := io.ReadFull(p.stdio.Conn(hostclient.StdOut), buf); err != nil {
				t.Fatal(err)
			}
			if err := tc.act(e, id, p.pid); err != nil {
				t.Fatal(err)
			}
			readAll(t, p.stdio, hostclient.StdOut)
			if code := e.wait(id, p.pid); code != tc.wantCode {
				t.Fatalf("exit code %d, want %d", code, tc.wantCode)
			}
			if n := e.notification(id); n.Type != tc.wantType {
				t.Fatalf("notification type %s, want %s", n.Type, tc.wantType)
			}
			// Signal and shutdown of the exited process are answered with
			// the codes hosts expect.
			if err := e.c.SignalProcess(ctxT(t, 30e9), id, p.pid, 9); hostclient.ResultOf(err) != prot.HrErrNotFound {
				t.Fatalf("signal after exit: %v", err)
			}
			if err := e.c.Shutdown(ctxT(t, 30e9), id, true); err != nil {
				t.Fatalf("shutdown after exit: %v", err)
			}
		})
	}
}

func TestWaitTimeoutAndUnknownProcess(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	e.create(id, e.spec("sleep", "1000"))
	p := e.exec(id, nil, false, false, false)
	_, err := e.c.WaitForProcess(ctxT(t, 30e9), id, p.pid, 100)
	if hostclient.ResultOf(err) != prot.HrVmcomputeTimeout {
		t.Fatalf("wait with timeout: %v", err)
	}
	if _, err := e.c.WaitForProcess(ctxT(t, 30e9), id, p.pid+100000, 0); hostclient.ResultOf(err) != prot.HrErrNotFound {
		t.Fatalf("wait for unknown pid: %v", err)
	}
	if _, err := e.c.WaitForProcess(ctxT(t, 30e9), "nosuchcontainer", 1, 0); hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		t.Fatalf("wait in unknown container: %v", err)
	}
	if err := e.c.SignalProcess(ctxT(t, 30e9), id, p.pid+100000, 9); hostclient.ResultOf(err) != prot.HrErrNotFound {
		t.Fatalf("signal unknown pid: %v", err)
	}
	if err := e.c.Shutdown(ctxT(t, 30e9), id, true); err != nil {
		t.Fatal(err)
	}
	if code := e.wait(id, p.pid); code != 137 {
		t.Fatalf("exit code %d", code)
	}
	e.notification(id)
}

func TestExecIntoContainer(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	e.create(id, e.spec("sleep", "1000"))
	initp := e.exec(id, nil, false, false, false)
	ep := e.exec(id, &specs.Process{Args: []string{"sh", "-c", "echo exec says hi; exit 7"}, Cwd: "/", Env: []string{"PATH=/bin"}}, false, true, false)
	if out := readAll(t, ep.stdio, hostclient.StdOut); out != "exec says hi\n" {
		t.Fatalf("stdout %q", out)
	}
	if code := e.wait(id, ep.pid); code != 7 {
		t.Fatalf("exec exit code %d", code)
	}
	// Its exit code stays answerable after the first answered wait.
	if code, err := e.c.WaitForProcess(ctxT(t, 30e9), id, ep.pid, 0); err != nil || code != 7 {
		t.Fatalf("second wait on exec: %d, %v", code, err)
	}
	props, err := e.c.GetProperties(ctxT(t, 30e9), id, prot.PtProcessList)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pd := range props.ProcessList {
		if pd.ProcessID == initp.pid {
			found = true
		}
	}
	if !found {
		t.Fatalf("process list %+v lacks init %d", props.ProcessList, initp.pid)
	}
	if err := e.c.Shutdown(ctxT(t, 30e9), id, true); err != nil {
		t.Fatal(err)
	}
	e.wait(id, initp.pid)
	e.notification(id)
}

func TestTerminalSizeAndResize(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	s := e.spec("sh")
	s.Process.Terminal = true
	s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 111}
	e.create(id, s)
	p := e.exec(id, nil, true, true, false)
	term := p.stdio.Conn(hostclient.StdIn)
	out := p.stdio.Conn(hostclient.StdOut)
	expect := func(want string) {
		t.Helper()
		var got []byte
		buf := make([]byte, 4096)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(string(got), want) {
			out.SetReadDeadline(deadline)
			n, err := out.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("waiting for %q: %v (got %q)", want, err, got)
			}
		}
	}
	io.WriteString(term, "stty size\n")
	expect("33 111")
	if err := e.c.ResizeConsole(ctxT(t, 30e9), id, p.pid, 48, 160); err != nil {
		t.Fatal(err)
	}
	io.WriteString(term, "stty size; exit 5\n")
	expect("48 160")
	readAll(t, p.stdio, hostclient.StdOut)
	if code := e.wait(id, p.pid); code != 5 {
		t.Fatalf("exit code %d", code)
	}
	e.notification(id)
	// Resizing after the relay closed succeeds silently.
	if err := e.c.ResizeConsole(ctxT(t, 30e9), id, p.pid, 10, 10); err != nil {
		t.Fatalf("resize after exit: %v", err)
	}
}

func withoutNamespace(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != t {
			out = append(out, ns)
		}
	}
	return out
}
