package bench

import (
	"context"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// startGCS starts bin/gcs in private namespaces with the given log level,
// connects and negotiates.
func startGCS(b *testing.B, logLevel string) (*gcstest.GCS, *hostclient.Client) {
	b.Helper()
	runc, err := gcstest.Binary("runc")
	if err != nil {
		b.Fatal(err)
	}
	g := gcstest.Start(b, gcstest.Options{Args: []string{"-loglevel", logLevel, "-runc", runc}})
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
func BenchmarkRoundTrip(b *testing.B) {
	for _, level := range []string{"info", "debug"} {
		for _, rq := range requests {
			b.Run(level+"/"+rq.name+"/sequential", func(b *testing.B) {
				_, c := startGCS(b, level)
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
				_, c := startGCS(b, level)
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
