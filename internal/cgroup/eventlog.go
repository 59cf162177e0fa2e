package cgroup

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
)

// EventLogger turns memory Events into the GCS's warning log lines.
type EventLogger struct {
	// StartTime is when the GCS started (logged as gcsStartTime).
	StartTime time.Time
	// Settle is how long to wait after an event before reading the
	// cgroup's statistics, so that a burst of allocations right after the
	// crossing is included (1 s in the GCS).
	Settle time.Duration
	// Log is the logger to write to; nil discards the lines.
	Log *logrus.Entry
}

// EventMessage is the message of every memory event log line.
const EventMessage = "memory usage for cgroup exceeded threshold"

// Run logs every event from events until the channel closes or ctx ends.
// Each line is a warning carrying the cgroup name, threshold, running count,
// GCS start time and memory/swap/kernel usage, max and limit; if the
// statistics cannot be read it is an error line instead.
func (l *EventLogger) Run(ctx context.Context, cg *Cgroup, events <-chan Event) {
	log := l.Log
	if log == nil {
		log = logging.Discard()
	}
	count := 0
	for {
		var ev Event
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			ev = e
		}
		count++
		entry := log.WithFields(logrus.Fields{
			"gcsStartTime":   l.StartTime,
			"cgroup":         ev.Cgroup,
			"thresholdBytes": ev.Threshold,
			"count":          count,
			"event":          ev.Kind.String(),
			"cgroup_version": cg.h.mode.String(),
		})
		if l.Settle > 0 {
			t := time.NewTimer(l.Settle)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		m, err := cg.Stats()
		if err != nil {
			entry.WithError(err).Error(EventMessage)
			continue
		}
		entry.WithFields(memoryFields(m)).Warn(EventMessage)
	}
}

// memoryFields are the usage fields of a memory event log line.
func memoryFields(m *Metrics) logrus.Fields {
	f := logrus.Fields{}
	if m.Memory == nil {
		return f
	}
	add := func(prefix string, e *MemoryEntry) {
		if e == nil {
			return
		}
		f[prefix+"Usage"] = e.Usage
		f[prefix+"UsageMax"] = e.Max
		f[prefix+"UsageLimit"] = e.Limit
	}
	add("memory", m.Memory.Usage)
	add("swap", m.Memory.Swap)
	add("kernel", m.Memory.Kernel)
	return f
}
