package timesync

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// fakeSys lays out a sysfs class/ptp tree: Hyper-V's PTP device is a
// hardware boundary the test machine does not have.
func fakeSys(t *testing.T, clocks map[string]string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "class", "ptp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for dev, name := range clocks {
		if err := os.MkdirAll(filepath.Join(dir, dev), 0o755); err != nil {
			t.Fatal(err)
		}
		if name == "" {
			continue // device without a clock_name file
		}
		if err := os.WriteFile(filepath.Join(dir, dev, "clock_name"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFindPTPClock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		clocks map[string]string
		want   string
		err    error
	}{
		{"hyperv among others", map[string]string{"ptp0": "KVM virtual PTP\n", "ptp1": "", "ptp2": "hyperv\n"}, "ptp2", nil},
		{"first hyperv wins", map[string]string{"ptp3": "hyperv\n", "ptp1": "hyperv\n"}, "ptp1", nil},
		{"name must match exactly", map[string]string{"ptp0": "hyperv", "ptp1": "hyperv2\n", "ptp2": " hyperv\n"}, "", ErrNoPTPClock},
		{"no devices", map[string]string{}, "", ErrNoPTPClock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindPTPClock(fakeSys(t, tc.clocks))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("FindPTPClock = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := FindPTPClock(t.TempDir()); !errors.Is(err, ErrNoPTPClock) {
		t.Fatalf("FindPTPClock without class/ptp: %v", err)
	}
	// The real sysfs must be readable; this machine may or may not have a
	// Hyper-V clock.
	if dev, err := FindPTPClock("/sys"); err != nil && !errors.Is(err, ErrNoPTPClock) {
		t.Fatalf("FindPTPClock(/sys) = %q, %v", dev, err)
	} else if err == nil {
		b, rerr := os.ReadFile(filepath.Join("/sys/class/ptp", dev, "clock_name"))
		if rerr != nil || string(b) != "hyperv\n" {
			t.Fatalf("FindPTPClock(/sys) = %q but its clock_name is %q, %v", dev, b, rerr)
		}
	}
}

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	p, err := WriteConfig(dir, "/dev/ptp2")
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, "chronyd.conf") {
		t.Fatalf("path %s", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "refclock PHC /dev/ptp2 poll 3 dpoll -2 offset 0 stratum 2\nmakestep 0.1 -1\n"
	if string(b) != want {
		t.Fatalf("config %q, want %q", b, want)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if _, err := WriteConfig(filepath.Join(dir, "missing"), "/dev/ptp0"); err == nil {
		t.Fatal("WriteConfig into a missing directory succeeded")
	}
}

func quickBackoff() Backoff {
	return Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}
}

// TestStart runs the full start-up against a stand-in chronyd script that
// records its arguments and stays in the foreground like chronyd -n.
func TestStart(t *testing.T) {
	dir := t.TempDir()
	sys := fakeSys(t, map[string]string{"ptp0": "other\n", "ptp1": "hyperv\n"})
	argsFile := filepath.Join(dir, "args")
	chronyd := filepath.Join(dir, "chronyd")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" > " + argsFile + ".tmp && mv " + argsFile + ".tmp " + argsFile + "\necho chronyd says hello\nexec sleep 300\n"
	if err := os.WriteFile(chronyd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	logger, hook := logtest.NewNullLogger()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := Config{SysRoot: sys, DevDir: "/dev", ConfDir: dir, Chronyd: chronyd, Backoff: quickBackoff(), Log: logrus.NewEntry(logger)}
	if err := Start(ctx, cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var args []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if args, err = os.ReadFile(argsFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chronyd was not started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conf := filepath.Join(dir, "chronyd.conf")
	if got := strings.TrimSpace(string(args)); got != "-n -f "+conf {
		t.Fatalf("chronyd args %q", got)
	}
	b, err := os.ReadFile(conf)
	if err != nil || !strings.Contains(string(b), "refclock PHC /dev/ptp1 ") {
		t.Fatalf("config %q, %v", b, err)
	}
	for !hasMessage(hook, "chronyd says hello") {
		if time.Now().After(deadline) {
			t.Fatal("chronyd output not logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasMessage(hook *logtest.Hook, msg string) bool {
	for _, e := range hook.AllEntries() {
		if e.Message == msg {
			return true
		}
	}
	return false
}

func TestStartErrors(t *testing.T) {
	hyperv := map[string]string{"ptp0": "hyperv\n"}
	for _, tc := range []struct {
		name     string
		clocks   map[string]string
		chronyd  string
		disabled bool
		err      error
		conf     bool
	}{
		{"no PTP clock", map[string]string{"ptp0": "other\n"}, "sh", false, ErrNoPTPClock, false},
		{"no chronyd in the image is not an error", hyperv, "opengcs-no-such-chronyd", false, nil, true},
		{"disabled does nothing", map[string]string{}, "opengcs-no-such-chronyd", true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logger, _ := logtest.NewNullLogger()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := Start(ctx, Config{Disabled: tc.disabled, SysRoot: fakeSys(t, tc.clocks), ConfDir: dir, Chronyd: tc.chronyd, Backoff: quickBackoff(), Log: logrus.NewEntry(logger)})
			if !errors.Is(err, tc.err) {
				t.Fatalf("Start = %v, want %v", err, tc.err)
			}
			_, serr := os.Stat(filepath.Join(dir, "chronyd.conf"))
			if (serr == nil) != tc.conf {
				t.Fatalf("config written = %v, want %v", serr == nil, tc.conf)
			}
		})
	}
}

// TestSuperviseRestarts runs a command that keeps exiting: it must be
// restarted, and Supervise must return once ctx ends, killing a running
// command.
func TestSuperviseRestarts(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Supervise(ctx, nil, func() (*exec.Cmd, error) {
			if runs.Add(1) < 4 {
				return exec.Command("sh", "-c", "echo short run; exit 3"), nil
			}
			return exec.Command("sleep", "300"), nil
		}, quickBackoff(), logrus.NewEntry(logger))
	}()
	deadline := time.Now().Add(30 * time.Second)
	for runs.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d runs", runs.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Supervise did not return after cancel")
	}
	warnings := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && e.Message == "restart monitor: command exited" {
			warnings++
		}
	}
	if warnings != 3 || !hasMessage(hook, "short run") {
		t.Fatalf("%d restart warnings (want 3), output logged=%v", warnings, hasMessage(hook, "short run"))
	}
}

// TestMissingChronydIsRetried: chronyd missing from the image is logged by
// the restart monitor, again after each back-off delay, and never ends the
// monitor.
func TestMissingChronydIsRetried(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{SysRoot: fakeSys(t, map[string]string{"ptp0": "hyperv\n"}), ConfDir: t.TempDir(), Chronyd: "opengcs-no-such-chronyd", Backoff: quickBackoff(), Log: logrus.NewEntry(logger)}
	if err := Start(ctx, cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, e := range hook.AllEntries() {
			if err, ok := e.Data[logrus.ErrorKey].(error); ok && e.Level == logrus.WarnLevel && errors.Is(err, ErrChronydNotFound) {
				n++
			}
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d missing-chronyd warnings, want at least 3", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackoffDelays(t *testing.T) {
	next := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}.delays()
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := next(); got != w*time.Millisecond {
			t.Fatalf("delay %d = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	jittered := DefaultBackoff.delays()
	for i := 0; i < 40; i++ {
		if d := jittered(); d <= 0 || d > DefaultBackoff.Max {
			t.Fatalf("jittered delay %v out of (0, %v]", d, DefaultBackoff.Max)
		}
	}
}
