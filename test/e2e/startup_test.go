package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/logging"
)

// TestStartupCgroupLayout checks the start-up duties a host cannot see
// directly but relies on: the gcs runs in its own /gcs cgroup, next to the
// /pods cgroup that holds the containers (docs/boot.md, "Start-up order" and
// "cgroup layout"), here below the test's private prefix; and bad flags stop
// it with a one-line reason.
func TestStartupCgroupLayout(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	connect(t, g)
	pid, err := g.Pid()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := procCgroup(t, pid), g.CgroupPrefix+"/gcs"; got != want {
		t.Fatalf("gcs cgroup %q, want %q", got, want)
	}
	pods := filepath.Join(gcsCgroupDir(t, g, "memory", "/pods"), "memory.limit_in_bytes")
	if cgroupV2(t) {
		pods = filepath.Join(gcsCgroupDir(t, g, "memory", "/pods"), "memory.max")
	}
	if _, err := os.Stat(pods); err != nil {
		t.Fatalf("pods cgroup: %v", err)
	}
}

func TestBadFlagsExitWithReason(t *testing.T) {
	gcs, err := gcstest.Binary("gcs")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-log-format", "xml"},
		{"-loglevel", "loud"},
		{"-kmsgLogLevel", "9"},
		{"-transport", "tcp:1.2.3.4"},
		{"-initial-policy-stance", "maybe"},
		{"-nosuchflag"},
	} {
		out, err := runCmd(gcs, args...)
		if err == nil {
			t.Fatalf("gcs %v started", args)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "gcs: ") {
			t.Fatalf("gcs %v: want one line of reason, got %q", args, out)
		}
	}
}

// TestBadFlagsInJSONMode: asked for a JSON log, the gcs reports a bad
// command line as one fatal JSON entry, since the host decodes that
// stream as JSON from its first byte.
func TestBadFlagsInJSONMode(t *testing.T) {
	gcs, err := gcstest.Binary("gcs")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-log-format", "json", "-nosuchflag"},
		{"-log-format=json", "-loglevel", "loud"},
		{"-kmsgLogLevel", "9", "-log-format", "json"},
	} {
		out, err := runCmd(gcs, args...)
		if err == nil {
			t.Fatalf("gcs %v started", args)
		}
		var e struct {
			Level, Msg, Error string
		}
		if lines, bad, _ := logging.Check(strings.NewReader(out)); lines != 1 || len(bad) != 0 {
			t.Fatalf("gcs %v: want one JSON entry, got %q", args, out)
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || e.Level != "fatal" || e.Error == "" {
			t.Errorf("gcs %v: entry %q (%v), want level fatal with an error", args, out, err)
		}
	}
}
