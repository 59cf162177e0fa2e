package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// startGCS starts bin/gcs in private namespaces with the given log level
// (and extra flags), connects and negotiates.
func startGCS(b *testing.B, logLevel string, extra ...string) (*gcstest.GCS, *hostclient.Client) {
	b.Helper()
	runc, err := gcstest.Binary("runc")
	if err != nil {
		b.Fatal(err)
	}
	g := gcstest.Start(b, gcstest.Options{Args: append([]string{"-loglevel", logLevel, "-runc", runc}, extra...)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := g.Connect(ctx)
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	b.Cleanup(func() { c.Close() })
	return g, c
}

// requests are cheap round trips: Start is decoded and answered without
// touching any container; WaitForProcess on an unknown container goes
// through the guest's lookup and comes back as a failure (0xC037010E),
// which the gcs logs.
var requests = []struct {
	name string
	do   func(ctx context.Context, c *hostclient.Client) error
}{
	{"Start", func(ctx context.Context, c *hostclient.Client) error {
		return c.Start(ctx, "bench")
	}},
	{"WaitUnknown", func(ctx context.Context, c *hostclient.Client) error {
		_, err := c.WaitForProcess(ctx, "no-such-container", 1, 0)
		if hostclient.ResultOf(err) == prot.HrVmcomputeSystemNotFound {
			return nil
		}
		if err == nil {
			return errUnexpectedSuccess
		}
		return err
	}},
}

type benchError string

func (e benchError) Error() string { return string(e) }

const errUnexpectedSuccess = benchError("WaitForProcess on an unknown container succeeded")

// BenchmarkRoundTrip measures request round trips through the real gcs,
// one at a time and from parallel callers, and reports them per second.
// Tracing is off (-trace=false): BenchmarkRoundTripTracing measures it.
func BenchmarkRoundTrip(b *testing.B) {
	for _, level := range []string{"info", "debug"} {
		for _, rq := range requests {
			b.Run(level+"/"+rq.name+"/sequential", func(b *testing.B) {
				_, c := startGCS(b, level, "-trace=false")
				ctx := context.Background()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := rq.do(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
			})
			b.Run(level+"/"+rq.name+"/parallel", func(b *testing.B) {
				_, c := startGCS(b, level, "-trace=false")
				ctx := context.Background()
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := rq.do(ctx, c); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
			})
		}
	}
}

// BenchmarkRoundTripTracing measures what the per-request spans cost. It
// runs three gcs side by side and, in every iteration, one sequential
// Start round trip on each, so that load from other work hits all three
// alike: tracing off (-trace=false), tracing on with no trace context in
// the request (a new trace per request), and tracing on with a W3C
// traceparent in "otsc" as hcsshim sends it (a child of the host's span).
// Every span is written to the log as a JSON entry (-log-format json,
// -loglevel info). It reports the mean round trip of each in µs, and the
// CPU time the gcs process spent per round trip (user + system, from
// /proc/<pid>/stat), which load from other work disturbs much less.
func BenchmarkRoundTripTracing(b *testing.B) {
	withContext := &prot.MessageBase{
		ContainerID: "bench", ActivityID: "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		OpenTelemetrySpanContext: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}
	start := func(ctx context.Context, c *hostclient.Client) error { return c.Start(ctx, "bench") }
	variants := []struct {
		name  string
		flags []string
		do    func(ctx context.Context, c *hostclient.Client) error
		c     *hostclient.Client
		pid   int
		total time.Duration
		cpu   time.Duration
	}{
		{name: "off", flags: []string{"-trace=false"}, do: start},
		{name: "on", do: start},
		{name: "on-otsc", do: func(ctx context.Context, c *hostclient.Client) error {
			return c.Call(ctx, prot.ComputeSystemStartV1, withContext, &prot.MessageResponseBase{})
		}},
	}
	for i := range variants {
		var g *gcstest.GCS
		g, variants[i].c = startGCS(b, "info", append([]string{"-log-format", "json"}, variants[i].flags...)...)
		pid, err := g.Pid()
		if err != nil {
			b.Fatal(err)
		}
		variants[i].pid = pid
		variants[i].cpu = -cpuTime(b, pid)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range variants {
			v := &variants[(i+j)%len(variants)]
			t0 := time.Now()
			if err := v.do(ctx, v.c); err != nil {
				b.Fatal(err)
			}
			v.total += time.Since(t0)
		}
	}
	b.StopTimer()
	for _, v := range variants {
		v.cpu += cpuTime(b, v.pid)
		b.ReportMetric(float64(v.total.Microseconds())/float64(b.N), v.name+"-µs/rt")
		b.ReportMetric(float64(v.cpu.Microseconds())/float64(b.N), v.name+"-cpu-µs/rt")
	}
}

// cpuTime is the user + system CPU time process pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start at ") ";
	// utime and stime are fields 14 and 15 (the 12th and 13th after it).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += n
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clockTicks
}

// BenchmarkIdleRSS reports the resident memory of a gcs that has started,
// connected and negotiated, and then serves nothing.
func BenchmarkIdleRSS(b *testing.B) {
	var total int64
	for i := 0; i < b.N; i++ {
		g, c := startGCS(b, "info")
		// Let start-up work (log flushes, goroutines parking) settle.
		time.Sleep(200 * time.Millisecond)
		rss, err := g.RSS()
		if err != nil {
			b.Fatal(err)
		}
		total += rss
		c.Close()
		g.Stop()
	}
	b.ReportMetric(float64(total)/float64(b.N)/(1<<20), "idle-RSS-MiB")
}
