package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
)

// Defaults of Options.
const (
	DefaultInterval   = time.Second
	DefaultMinBytes   = 1 << 20
	DefaultQuietBytes = 64 << 10
)

// allocsMetric is the runtime's cumulative count of heap bytes allocated.
const allocsMetric = "/gc/heap/allocs:bytes"

// Options configure a Trimmer. Zero values take the defaults.
type Options struct {
	// Interval between samples.
	Interval time.Duration
	// MinBytes allocated since the last trim make a trim worthwhile.
	MinBytes uint64
	// QuietBytes: an interval allocating less than this is quiet.
	QuietBytes uint64
	// Allocated returns the cumulative bytes allocated (the runtime's
	// counter by default; tests inject their own).
	Allocated func() uint64
	// Release trims (runtime/debug.FreeOSMemory by default).
	Release func()
	// Log receives a debug record per trim; nil discards them.
	Log *logrus.Entry
}

// Trimmer decides when to trim from successive samples.
type Trimmer struct {
	o        Options
	last     uint64 // counter at the previous sample
	trimmed  uint64 // counter right after the last trim
	hasFirst bool
}

// New returns a Trimmer with the defaults filled in.
func New(o Options) *Trimmer {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MinBytes == 0 {
		o.MinBytes = DefaultMinBytes
	}
	if o.QuietBytes == 0 {
		o.QuietBytes = DefaultQuietBytes
	}
	if o.Allocated == nil {
		o.Allocated = runtimeAllocated
	}
	if o.Release == nil {
		o.Release = debug.FreeOSMemory
	}
	if o.Log == nil {
		o.Log = logging.Discard()
	}
	return &Trimmer{o: o}
}

// Sample takes one sample and trims if the rules say so; it reports
// whether it trimmed. Run calls it every Interval.
func (t *Trimmer) Sample() bool {
	now := t.o.Allocated()
	if !t.hasFirst {
		// Whatever start-up allocated counts as a burst too.
		t.hasFirst = true
		t.last = now
		return false
	}
	delta := now - t.last
	t.last = now
	if delta >= t.o.QuietBytes || now-t.trimmed < t.o.MinBytes {
		return false
	}
	since := now - t.trimmed
	t.o.Release()
	t.trimmed = t.o.Allocated()
	t.last = t.trimmed
	t.o.Log.WithField("allocatedSinceTrim", since).Debug("memtrim: returned free memory to the system")
	return true
}

// Run samples every Interval until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	tick := time.NewTicker(t.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Sample()
		}
	}
}

func runtimeAllocated() uint64 {
	s := []metrics.Sample{{Name: allocsMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
