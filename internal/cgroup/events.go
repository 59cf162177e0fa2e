package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// EventKind tells what a memory Event reports.
type EventKind int

const (
	// EventThreshold means memory usage went above the watched threshold.
	EventThreshold EventKind = iota + 1
	// EventOOM means the kernel's OOM killer acted in the cgroup.
	EventOOM
)

// String names the kind for logs.
func (k EventKind) String() string {
	switch k {
	case EventThreshold:
		return "threshold"
	case EventOOM:
		return "oom"
	default:
		return fmt.Sprintf("EventKind(%d)", int(k))
	}
}

// Event is one memory notification for a cgroup.
type Event struct {
	Kind   EventKind
	Cgroup string
	// Threshold is the watched threshold in bytes (EventThreshold only).
	Threshold uint64
	// Usage is the memory usage sampled when the event was seen (v2 only;
	// v1 notifications carry no value).
	Usage uint64
	// OOMKills is the cgroup's running OOM kill count (v2 only).
	OOMKills uint64
	Time     time.Time
}

// WatchMemoryThreshold delivers an Event each time the cgroup's memory usage
// rises above threshold bytes. v1 registers an eventfd on
// memory.usage_in_bytes through cgroup.event_control (the kernel signals
// each crossing); v2 samples memory.current every poll interval and
// signals when usage is above the threshold and higher than the previous
// sample. The channel closes when ctx ends or the cgroup is removed.
func (c *Cgroup) WatchMemoryThreshold(ctx context.Context, threshold uint64) (<-chan Event, error) {
	tmpl := Event{Kind: EventThreshold, Cgroup: c.path, Threshold: threshold}
	if c.h.mode == ModeV1 {
		return c.watchV1(ctx, "memory.usage_in_bytes", strconv.FormatUint(threshold, 10), tmpl)
	}
	file := filepath.Join(c.h.v2Dir(c.path), "memory.current")
	if _, err := readUint(file); err != nil {
		return nil, watchErr(c.path, err)
	}
	var last uint64
	return c.poll(ctx, func() (Event, bool, error) {
		cur, err := readUint(file)
		if err != nil {
			return Event{}, false, err
		}
		fire := cur > threshold && cur > last
		last = cur
		ev := tmpl
		ev.Usage = cur
		return ev, fire, nil
	}), nil
}

// WatchOOM delivers an Event each time the OOM killer acts in the cgroup.
// v1 registers an eventfd on memory.oom_control; v2 samples memory.events
// every poll interval and signals when oom_kill increased since
// registration or the previous event.
func (c *Cgroup) WatchOOM(ctx context.Context) (<-chan Event, error) {
	tmpl := Event{Kind: EventOOM, Cgroup: c.path}
	if c.h.mode == ModeV1 {
		return c.watchV1(ctx, "memory.oom_control", "", tmpl)
	}
	file := filepath.Join(c.h.v2Dir(c.path), "memory.events")
	ev, err := readKeyValues(file)
	if err != nil {
		return nil, watchErr(c.path, err)
	}
	last := ev["oom_kill"]
	return c.poll(ctx, func() (Event, bool, error) {
		ev, err := readKeyValues(file)
		if err != nil {
			return Event{}, false, err
		}
		kills := ev["oom_kill"]
		fire := kills > last
		last = kills
		out := tmpl
		out.OOMKills = kills
		return out, fire, nil
	}), nil
}

func watchErr(p string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("watch memory of cgroup %s: %w", p, ErrNoMemoryController)
	}
	return fmt.Errorf("watch memory of cgroup %s: %w", p, err)
}

// poll runs sample every poll interval until ctx ends or the cgroup's
// directory disappears, sending the events it reports.
func (c *Cgroup) poll(ctx context.Context, sample func() (Event, bool, error)) <-chan Event {
	ch := make(chan Event, 1)
	go func() {
		defer close(ch)
		t := time.NewTicker(c.h.pollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ev, fire, err := sample()
			if err != nil {
				if !c.Exists() {
					return
				}
				continue
			}
			if !fire {
				continue
			}
			ev.Time = time.Now()
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// watchV1 registers an eventfd for file (with optional argument) through
// the memory cgroup's cgroup.event_control and forwards its signals. The
// kernel also signals the eventfd when the cgroup is removed; that signal
// is recognised by cgroup.event_control being gone and ends the watch.
func (c *Cgroup) watchV1(ctx context.Context, file, arg string, tmpl Event) (<-chan Event, error) {
	dir, ok := c.h.controllerDir("memory", c.path)
	if !ok {
		return nil, watchErr(c.path, ErrNoMemoryController)
	}
	target, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil, watchErr(c.path, err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		target.Close()
		return nil, fmt.Errorf("watch memory of cgroup %s: eventfd: %w", c.path, err)
	}
	// os.NewFile puts the non-blocking eventfd on the runtime poller, so
	// closing it wakes a pending Read.
	efile := os.NewFile(uintptr(efd), "eventfd")
	ctl := fmt.Sprintf("%d %d", efd, target.Fd())
	if arg != "" {
		ctl += " " + arg
	}
	control := filepath.Join(dir, "cgroup.event_control")
	if err := writeValue(control, ctl); err != nil {
		efile.Close()
		target.Close()
		return nil, watchErr(c.path, err)
	}
	ch := make(chan Event, 1)
	stop := context.AfterFunc(ctx, func() { efile.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer target.Close()
		defer efile.Close()
		var buf [8]byte
		for {
			if _, err := efile.Read(buf[:]); err != nil {
				return
			}
			if _, err := os.Lstat(control); err != nil {
				return
			}
			ev := tmpl
			ev.Time = time.Now()
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
