package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// memoryHierarchies returns a test hierarchy for every mode whose memory
// controller is usable on this machine (v1 on a hybrid host, v2 on a pure
// v2 host). Modes without it are reported, since their memory paths cannot
// run here; TestLayout checks that they fail cleanly.
func memoryHierarchies(t *testing.T, opts ...Option) map[Mode]*Hierarchy {
	t.Helper()
	out := map[Mode]*Hierarchy{}
	for mode, root := range availableRoots(t) {
		h := testHierarchy(t, root, opts...)
		if hasMemory(h) {
			out[mode] = h
		} else {
			t.Logf("%s hierarchy at %s has no memory controller; its memory events run where it has one", mode, root)
		}
	}
	if len(out) == 0 {
		t.Fatal("no cgroup hierarchy with a memory controller on this machine")
	}
	return out
}

func waitEvent(t *testing.T, ch <-chan Event, timeout time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed before an event arrived")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	return Event{}
}

// TestOOMEvent runs a real process that allocates far beyond its cgroup's
// limit; the OOM killer must act and the OOM event must arrive.
func TestOOMEvent(t *testing.T) {
	for mode, h := range memoryHierarchies(t, WithPollInterval(100*time.Millisecond)) {
		t.Run(mode.String(), func(t *testing.T) {
			cg, err := h.Create("/oom")
			if err != nil {
				t.Fatal(err)
			}
			if err := cg.SetMemoryLimit(32 << 20); err != nil {
				t.Fatal(err)
			}
			noSwap(t, cg, 32<<20)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events, err := cg.WatchOOM(ctx)
			if err != nil {
				t.Fatalf("WatchOOM: %v", err)
			}
			hg := startHog(t, cg, 256<<20)
			ev := waitEvent(t, events, 60*time.Second)
			if ev.Kind != EventOOM || ev.Cgroup != "/oom" {
				t.Fatalf("event = %+v", ev)
			}
			select {
			case err := <-hg.done:
				hg.done <- err // for cleanup
				if err == nil {
					t.Fatal("hog exited cleanly; it should have been OOM-killed")
				}
			case <-time.After(60 * time.Second):
				t.Fatal("hog survived the OOM event")
			}
			m, err := cg.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if m.MemoryOomControl == nil || m.MemoryOomControl.OomKill == 0 {
				t.Fatalf("stats show no OOM kill: %+v", m.MemoryOomControl)
			}
			cancel()
			for range events {
			}
		})
	}
}

// TestThresholdEvent crosses a memory threshold with a real process and
// checks the event and the warning line the EventLogger writes for it.
func TestThresholdEvent(t *testing.T) {
	for mode, h := range memoryHierarchies(t, WithPollInterval(100*time.Millisecond)) {
		t.Run(mode.String(), func(t *testing.T) {
			cg, err := h.Create("/gcs")
			if err != nil {
				t.Fatal(err)
			}
			const threshold = 16 << 20
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events, err := cg.WatchMemoryThreshold(ctx, threshold)
			if err != nil {
				t.Fatalf("WatchMemoryThreshold: %v", err)
			}
			logger, hook := logtest.NewNullLogger()
			forward := make(chan Event, 1)
			done := make(chan struct{})
			start := time.Now()
			go func() {
				defer close(done)
				(&EventLogger{StartTime: start, Log: logrus.NewEntry(logger)}).Run(ctx, cg, forward)
			}()

			hg := startHog(t, cg, 64<<20)
			hg.waitReady(t)
			ev := waitEvent(t, events, 60*time.Second)
			if ev.Kind != EventThreshold || ev.Threshold != threshold || ev.Cgroup != "/gcs" {
				t.Fatalf("event = %+v", ev)
			}
			forward <- ev
			close(forward)
			<-done
			entries := hook.AllEntries()
			if len(entries) != 1 {
				t.Fatalf("%d log entries, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != logrus.WarnLevel || e.Message != EventMessage {
				t.Fatalf("log entry %v %q", e.Level, e.Message)
			}
			for k, want := range map[string]any{
				"cgroup":         "/gcs",
				"thresholdBytes": uint64(threshold),
				"count":          1,
				"gcsStartTime":   start,
				"cgroup_version": mode.String(),
				"event":          "threshold",
			} {
				if e.Data[k] != want {
					t.Errorf("field %s = %v, want %v", k, e.Data[k], want)
				}
			}
			if u, _ := e.Data["memoryUsage"].(uint64); u < threshold {
				t.Errorf("memoryUsage = %v, want >= %d", e.Data["memoryUsage"], threshold)
			}
			for _, k := range []string{"memoryUsageMax", "memoryUsageLimit", "swapUsage", "kernelUsage"} {
				if _, ok := e.Data[k]; !ok {
					t.Errorf("field %s missing", k)
				}
			}
		})
	}
}

// TestWatchEndsWithCgroup removes a watched cgroup: the watch must end.
func TestWatchEndsWithCgroup(t *testing.T) {
	for mode, h := range memoryHierarchies(t, WithPollInterval(50*time.Millisecond)) {
		t.Run(mode.String(), func(t *testing.T) {
			cg, err := h.Create("/gone")
			if err != nil {
				t.Fatal(err)
			}
			events, err := cg.WatchOOM(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := cg.Delete(); err != nil {
				t.Fatal(err)
			}
			select {
			case ev, ok := <-events:
				if ok {
					t.Fatalf("unexpected event %+v", ev)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("watch still running after the cgroup was removed")
			}
		})
	}
}

func TestWatchMissingCgroup(t *testing.T) {
	for mode, h := range memoryHierarchies(t) {
		t.Run(mode.String(), func(t *testing.T) {
			cg := &Cgroup{h: h, path: "/does-not-exist"}
			if _, err := cg.WatchOOM(context.Background()); !errors.Is(err, ErrNoMemoryController) {
				t.Fatalf("WatchOOM on a missing cgroup: %v", err)
			}
			if _, err := h.Load("/does-not-exist"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("Load of a missing cgroup: %v", err)
			}
		})
	}
}

// noSwap keeps the hog from escaping its limit into swap on machines that
// have swap: v2 memory.swap.max = 0, v1 memory.memsw.limit_in_bytes = limit.
func noSwap(t *testing.T, cg *Cgroup, limit uint64) {
	t.Helper()
	dir, _ := cg.h.controllerDir("memory", cg.path)
	file, val := "memory.memsw.limit_in_bytes", strconv.FormatUint(limit, 10)
	if cg.h.Mode() == ModeV2 {
		file, val = "memory.swap.max", "0"
	}
	p := filepath.Join(dir, file)
	if _, err := os.Stat(p); err != nil {
		return // no swap accounting: no swap to escape into
	}
	if err := os.WriteFile(p, []byte(val), 0); err != nil {
		t.Fatalf("limit swap: %v", err)
	}
}
