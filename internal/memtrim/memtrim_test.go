package memtrim

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestSampleRules(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		// counter values seen by successive samples
		counter []uint64
		// whether each sample trims
		want []bool
	}{
		{"idle never trims", []uint64{0, 0, 0, 0}, []bool{false, false, false, false}},
		{"trickle never trims", []uint64{0, 10 << 10, 20 << 10, 30 << 10}, []bool{false, false, false, false}},
		{"start-up burst trims once quiet", []uint64{5 * mib, 5 * mib, 5 * mib}, []bool{false, true, false}},
		{"busy does not trim", []uint64{0, 2 * mib, 4 * mib, 6 * mib}, []bool{false, false, false, false}},
		{"burst then quiet trims once", []uint64{0, 2 * mib, 4 * mib, 4 * mib, 4 * mib, 4 * mib}, []bool{false, false, false, true, false, false}},
		{"small burst below MinBytes", []uint64{0, 512 << 10, 512 << 10, 512 << 10}, []bool{false, false, false, false}},
		{"two bursts trim twice", []uint64{0, 3 * mib, 3 * mib, 6 * mib, 6 * mib}, []bool{false, false, true, false, true}},
		{"bursts below MinBytes add up", []uint64{0, 600 << 10, 600 << 10, 1200 << 10, 1200 << 10}, []bool{false, false, false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, releases := 0, 0
			tr := New(Options{
				Allocated: func() uint64 { return tc.counter[i] },
				Release:   func() { releases++ },
			})
			trims := 0
			for i = range tc.counter {
				got := tr.Sample()
				if got != tc.want[i] {
					t.Fatalf("sample %d (counter %d): trimmed %v, want %v", i, tc.counter[i], got, tc.want[i])
				}
				if got {
					trims++
				}
			}
			if releases != trims {
				t.Fatalf("%d releases for %d trims", releases, trims)
			}
		})
	}
}

// sink keeps allocations from being optimised away.
var sink [][]byte

func released() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestRunReturnsMemory drives the real runtime: 64 MiB of garbage, then a
// quiet interval, and the runtime must report the memory released.
func TestRunReturnsMemory(t *testing.T) {
	tr := New(Options{Interval: 20 * time.Millisecond, QuietBytes: 4 << 20})
	tr.Sample() // baseline
	for i := 0; i < 64; i++ {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	before := released()
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tr.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for released() < before+32<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("released heap went from %d to %d bytes only", before, released())
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
