package e2e

import (
	"strings"
	"testing"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestUserNamesResolvedInContainer checks docs/lifecycle.md, "User names",
// through the wire: a sandbox's user name is resolved against the container's
// own /etc/passwd; an exec without a user inherits the resolved ids; an exec
// naming a user is resolved too; an unknown name fails Create clearly.
func TestUserNamesResolvedInContainer(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	s := e.sandboxSpec(id, "", "users")
	s.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
	s.Process.User.Username = "nobody"
	e.create(id, s)
	initPid := e.startInit(id)

	p := e.exec(id, procArgs("id"), false, true, false)
	if out := readAll(t, p.stdio, hostclient.StdOut); !strings.Contains(out, "uid=65534") || !strings.Contains(out, "gid=65534") {
		t.Fatalf("exec inherits the resolved user: %q", out)
	}
	e.wait(id, p.pid)

	root := procArgs("id", "-u")
	root.User.Username = "root"
	p = e.exec(id, root, false, true, false)
	if out := readAll(t, p.stdio, hostclient.StdOut); out != "0\n" {
		t.Fatalf("exec as root: %q", out)
	}
	e.wait(id, p.pid)

	bad := procArgs("id")
	bad.User.Username = "no-such-user"
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = e.c.ExecuteProcess(ctxT(t, 30e9), id, &prot.ProcessParameters{OCIProcess: bad}, st.Ports)
	if err == nil || !strings.Contains(err.Error(), "no-such-user") {
		t.Fatalf("exec as an unknown user: %v", err)
	}

	if err := e.c.Shutdown(ctxT(t, 30e9), id, true); err != nil {
		t.Fatal(err)
	}
	e.wait(id, initPid)
	e.notification(id)

	// Create with a user the image does not know fails with the name.
	id2 := newID(t)
	s2 := e.sandboxSpec(id2, "", "users2")
	s2.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
	s2.Process.User.Username = "ghost"
	if err := e.tryCreate(id2, s2); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("create with an unknown user: %v", err)
	}
}
