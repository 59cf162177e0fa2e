package e2e

import (
	"testing"

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
