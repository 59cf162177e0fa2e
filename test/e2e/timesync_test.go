package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/gcstest"
)

// The time synchronisation start-up duty as a host without
// -disable-time-sync (the host's default) meets it. The Hyper-V PTP clock is
// a hardware boundary: the gcs finds it in a fake sysfs tree (-sysfs-root)
// and hands chronyd the device path below -dev-root. chronyd is the real
// binary the image ships (Debian's chrony).

// timeSyncTree makes a fake sysfs whose class/ptp holds the given clocks and
// a dev directory, outside /tmp (the gcs under test has a /tmp of its own).
// The Hyper-V clock's device node is a FIFO: chronyd blocks opening it, so
// it stays alive until killed, as it would on the real clock.
func timeSyncTree(t *testing.T, clocks map[string]string) (dir, sys, dev string) {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "opengcs-timesync-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sys, dev = filepath.Join(dir, "sys"), filepath.Join(dir, "dev")
	for name, clock := range clocks {
		d := filepath.Join(sys, "class", "ptp", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "clock_name"), []byte(clock), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(sys, "class", "ptp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for name := range clocks {
		if err := unix.Mkfifo(filepath.Join(dev, name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, sys, dev
}

// startTimeSync starts a gcs with time sync on (the host's default command
// line has no -disable-time-sync) and a private /tmp.
func startTimeSync(t *testing.T, dir, sys, dev string, env ...string) *gcstest.GCS {
	t.Helper()
	g, err := gcstest.StartDir(dir, gcstest.Options{
		PrivateTmp: true,
		Env:        env,
		Args:       []string{"-disable-time-sync=false", "-sysfs-root", sys, "-dev-root", dev},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		if err := g.CheckLog(); err != nil {
			t.Errorf("%v", err)
		}
		if t.Failed() {
			t.Logf("gcs log:\n%s", g.Log())
		}
	})
	return g
}

// chronydChild returns the pid (outside the gcs's PID namespace) of the
// gcs's child running `chronyd -n -f /tmp/chronyd.conf`, or 0.
func chronydChild(g *gcstest.GCS) int {
	gcsPid, err := g.Pid()
	if err != nil {
		return 0
	}
	// Each thread has its own list of the children it forked.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", gcsPid))
	var children []string
	for _, task := range tasks {
		if data, err := os.ReadFile(task); err == nil {
			children = append(children, strings.Fields(string(data))...)
		}
	}
	for _, f := range children {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 4 && filepath.Base(args[0]) == "chronyd" && strings.Join(args[1:], " ") == "-n -f /tmp/chronyd.conf" {
			return pid
		}
	}
	return 0
}

// eventually polls cond every 20 ms until it holds or 60 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTimeSyncRunsChronydUnderRestartMonitor(t *testing.T) {
	if _, err := exec.LookPath("chronyd"); err != nil {
		t.Fatalf("chronyd is not installed (test/setup/deps.sh installs chrony): %v", err)
	}
	dir, sys, dev := timeSyncTree(t, map[string]string{"ptp0": "other\n", "ptp1": "hyperv\n"})
	g := startTimeSync(t, dir, sys, dev)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := g.Connect(ctx)
	if err != nil {
		t.Fatalf("the gcs must serve the bridge with time sync on: %v", err)
	}
	defer c.Close()

	var first int
	eventually(t, "chronyd -n -f /tmp/chronyd.conf", func() bool { first = chronydChild(g); return first != 0 })
	conf, err := g.Root("/tmp/chronyd.conf")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	want := "refclock PHC " + dev + "/ptp1 poll 3 dpoll -2 offset 0 stratum 2\nmakestep 0.1 -1\n"
	if string(b) != want {
		t.Fatalf("chronyd.conf = %q, want %q", b, want)
	}

	// Killed, chronyd is started again by the restart monitor, and the
	// gcs goes on serving.
	if err := unix.Kill(first, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a restarted chronyd", func() bool { p := chronydChild(g); return p != 0 && p != first })
	if !strings.Contains(g.Log(), "restart monitor: command exited") {
		t.Fatal("the restart is not logged")
	}
	if _, err := c.DumpStacks(ctx); err != nil {
		t.Fatalf("the gcs stopped serving after chronyd was killed: %v", err)
	}
}

func TestTimeSyncWithoutChronydOnlyLogs(t *testing.T) {
	dir, sys, dev := timeSyncTree(t, map[string]string{"ptp0": "hyperv\n"})
	// A PATH without /usr/sbin: as an image without chronyd.
	g := startTimeSync(t, dir, sys, dev, "PATH=/usr/bin:/bin")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := g.Connect(ctx)
	if err != nil {
		t.Fatalf("a missing chronyd must not stop the gcs: %v", err)
	}
	defer c.Close()
	// Logged, and tried again after the back-off delay (0.5 s, jittered).
	eventually(t, "two missing-chronyd warnings", func() bool { return strings.Count(g.Log(), "chronyd not found") >= 2 })
	if _, err := c.DumpStacks(ctx); err != nil {
		t.Fatalf("the gcs stopped serving: %v", err)
	}
}

func TestTimeSyncWithoutHyperVClockIsFatal(t *testing.T) {
	dir, sys, dev := timeSyncTree(t, map[string]string{"ptp0": "KVM virtual PTP\n"})
	g := startTimeSync(t, dir, sys, dev)
	select {
	case <-g.Exited():
	case <-time.After(60 * time.Second):
		t.Fatal("the gcs kept running without a Hyper-V PTP clock")
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(g.Log()), "\n") {
		if strings.Contains(l, "no hyperv PTP clock") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "-disable-time-sync") || !strings.Contains(strings.ToLower(lines[0]), "fatal") {
		t.Fatalf("want one fatal line naming the missing clock and -disable-time-sync, got %q", lines)
	}
}
