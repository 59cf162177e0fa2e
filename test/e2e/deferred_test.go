package e2e

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestDeferredCreate covers a container whose runc create the gcs defers
// to its init's start (docs/containers.md, "Deferred create"): requests
// that need it to exist before the start see it as if runc had created it
// at Create, and the start is then runc start.
func TestDeferredCreate(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		// before runs between Create and the init's start.
		before func(t *testing.T, id string)
	}{
		{"start only", func(t *testing.T, id string) {}},
		{"process list and statistics before start", func(t *testing.T, id string) {
			props, err := e.c.GetProperties(ctxT(t, 30e9), id, prot.PtProcessList, prot.PtStatistics)
			if err != nil {
				t.Fatal(err)
			}
			// runc's init, waiting to be started.
			if len(props.ProcessList) != 1 || len(props.Metrics) == 0 {
				t.Fatalf("before start: process list %+v, metrics %s", props.ProcessList, props.Metrics)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := newID(t)
			e.create(id, e.spec("sh", "-c", "echo started; exit 3"))
			tc.before(t, id)
			p := e.exec(id, nil, false, true, false)
			if out := readAll(t, p.stdio, hostclient.StdOut); out != "started\n" {
				t.Fatalf("stdout %q", out)
			}
			if code := e.wait(id, p.pid); code != 3 {
				t.Fatalf("exit code %d", code)
			}
			e.notification(id)
		})
	}
	// A runc error that runc create would have reported comes back from
	// the init's ExecuteProcess: here a mount whose source does not exist.
	t.Run("create error at start", func(t *testing.T) {
		id := newID(t)
		s := e.spec("true")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/x", Type: "bind", Source: "/no/such/source", Options: []string{"rbind"}})
		e.create(id, s)
		st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, false, false)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = e.c.ExecuteProcess(ctxT(t, 60e9), id, &prot.ProcessParameters{}, st.Ports)
		if err == nil {
			t.Fatal("init started with a mount of a missing source")
		}
		if err := e.c.DeleteContainerState(ctxT(t, 30e9), id); err != nil {
			t.Fatalf("delete after a failed start: %v", err)
		}
	})
}
