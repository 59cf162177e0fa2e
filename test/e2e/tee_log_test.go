package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/internal/hostclient"
)

const (
	annTeeLogPath     = "io.microsoft.container.lcow.tee-log-path"
	annTeeLogDirMount = "io.microsoft.container.lcow.tee-log-dir-mount"
)

// TestTeeLog checks the tee-log annotations as the reference serves them
// (upstream internal/guest/runtime/hcsv2/uvm.go and container.go): a
// workload whose spec names a tee-log path has its init's stdout and
// stderr written to <pod root>/logs/<path> as well as to the host, and a
// container with the tee-log-dir-mount annotation sees the pod's logs/ at
// that path.
func TestTeeLog(t *testing.T) {
	e := newEnv(t)
	sid, w1, w2 := newID(t), newID(t), newID(t)
	s := e.sandboxSpec(sid, "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706", "tee-0")
	s.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
	e.create(sid, s)
	spid := e.startInit(sid)

	w := e.workloadSpec(sid, "app", spid, "sh", "-c", "echo to-stdout; echo to-stderr >&2")
	w.Annotations[annTeeLogPath] = "app/init.log"
	e.create(w1, w)
	p := e.exec(w1, nil, false, true, true)
	if out := readAll(t, p.stdio, hostclient.StdOut); out != "to-stdout\n" {
		t.Fatalf("host stdout %q", out)
	}
	if out := readAll(t, p.stdio, hostclient.StdErr); out != "to-stderr\n" {
		t.Fatalf("host stderr %q", out)
	}
	if code := e.wait(w1, p.pid); code != 0 {
		t.Fatalf("exit %d", code)
	}
	path, err := e.g.Root(filepath.Join(bundleOf(sid), "logs", "app", "init.log"))
	if err != nil {
		t.Fatal(err)
	}
	// stdout and stderr are relayed concurrently: both lines, any order.
	lines := strings.Split(strings.TrimSuffix(podReadFile(t, path), "\n"), "\n")
	slices.Sort(lines)
	if !slices.Equal(lines, []string{"to-stderr", "to-stdout"}) {
		t.Fatalf("tee log holds %q, want the init's two lines", lines)
	}

	// Another container of the pod reads it through the log directory.
	r := e.workloadSpec(sid, "reader", spid, "cat", "/var/log/pod/app/init.log")
	r.Annotations[annTeeLogDirMount] = "/var/log/pod"
	e.create(w2, r)
	p = e.exec(w2, nil, false, true, false)
	if out := readAll(t, p.stdio, hostclient.StdOut); len(out) != len("to-stdout\nto-stderr\n") {
		t.Fatalf("the log directory mount shows %q", out)
	}
	if code := e.wait(w2, p.pid); code != 0 {
		t.Fatalf("reader exit %d", code)
	}
}
