//go:build soak

package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// soakLifecycles is how many containers BenchmarkSoak runs, one after the
// other; soakSettleAt is after how many the reference gauges are read.
const (
	soakLifecycles = 1000
	soakSettleAt   = 50
	// soakThreadSlack is how many idle threads the Go runtime may have
	// added after the first soakSettleAt lifecycles: one was seen in two
	// of three runs, none in the third.
	soakThreadSlack = 2
)

// BenchmarkSoak (make soak; build tag soak, not part of make test) runs
// soakLifecycles container lifecycles with exec and stdio through one gcs:
// each container's init has stdin, stdout and stderr relayed, a process
// exec'd into it with its own three streams echoes a line, then the init
// does, exits, and the container is deleted after its exit notification.
// The gauges are read once the gcs settled after the first soakSettleAt
// and again at the end. It fails on any leaked fd, thread, goroutine,
// mount, cgroup, runc state directory or zombie, or an RSS more than
// 1 MiB above the reference.
func BenchmarkSoak(b *testing.B) {
	for i := 0; i < b.N; i++ {
		soakOnce(b)
	}
}

func soakOnce(b *testing.B) {
	e := newCtrEnv(b)
	ctx, cancel := ctxFor(2 * time.Hour)
	defer cancel()
	n := newNotifier(ctx, e.c)
	time.Sleep(200 * time.Millisecond)
	idle, err := e.readGauges(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var ref gauges
	// The Go runtime never ends a thread it started (an M started when
	// the others were all in syscalls stays idle): the reference is the
	// most threads the gcs had during the first soakSettleAt lifecycles,
	// and up to soakThreadSlack more are the runtime's. A leak grows with
	// the number of lifecycles.
	maxThreads := idle.threads
	t0 := time.Now()
	for k := 1; k <= soakLifecycles; k++ {
		if err := e.soakLifecycle(ctx, n, newContainerID("soak")); err != nil {
			b.Fatalf("lifecycle %d: %v", k, err)
		}
		if k <= soakSettleAt {
			if th, err := e.threads(); err == nil && th > maxThreads {
				maxThreads = th
			}
		}
		if k == soakSettleAt {
			if ref, err = e.settleRSS(ctx, idle); err != nil {
				b.Fatal(err)
			}
			b.Logf("after %d: %v (most threads during the first %d: %d)", k, ref, k, maxThreads)
			ref.threads = max(ref.threads, maxThreads)
		}
	}
	elapsed := time.Since(t0)
	end, err := e.settleRSS(ctx, idle)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("idle:       %v", idle)
	b.Logf("after %d: %v", soakLifecycles, end)
	b.ReportMetric(float64(ref.rss)/(1<<20), "RSS-MiB-at-50")
	b.ReportMetric(float64(end.rss)/(1<<20), "RSS-MiB-at-end")
	b.ReportMetric(float64(end.fds-ref.fds), "fds-delta")
	b.ReportMetric(float64(end.threads-ref.threads), "threads-delta")
	b.ReportMetric(float64(end.goroutines-ref.goroutines), "goroutines-delta")
	b.ReportMetric(float64(end.mounts-idle.mounts), "mounts-left")
	b.ReportMetric(float64(end.cgroups-idle.cgroups), "cgroups-left")
	b.ReportMetric(float64(end.runcDirs-idle.runcDirs), "runc-dirs-left")
	b.ReportMetric(float64(end.zombies), "zombies")
	b.ReportMetric(elapsed.Seconds()/soakLifecycles*1000, "ms/lifecycle")
	var leaks []string
	check := func(what string, bad bool, got, want any) {
		if bad {
			leaks = append(leaks, fmt.Sprintf("%s: %v, want %v", what, got, want))
		}
	}
	check("fds", end.fds > ref.fds, end.fds, ref.fds)
	check("threads", end.threads > ref.threads+soakThreadSlack, end.threads, fmt.Sprintf("<= %d", ref.threads+soakThreadSlack))
	check("goroutines", end.goroutines > ref.goroutines, end.goroutines, ref.goroutines)
	check("mounts", end.mounts != idle.mounts, end.mounts, idle.mounts)
	check("cgroups", end.cgroups != idle.cgroups, end.cgroups, idle.cgroups)
	check("runc state dirs", end.runcDirs != idle.runcDirs, end.runcDirs, idle.runcDirs)
	check("zombies", end.zombies != 0, end.zombies, 0)
	check("RSS (MiB)", end.rss > ref.rss+1<<20, float64(end.rss)/(1<<20), fmt.Sprintf("<= %.1f", float64(ref.rss+1<<20)/(1<<20)))
	if len(leaks) > 0 {
		b.Fatalf("leaks after %d lifecycles: %v", soakLifecycles, leaks)
	}
}

// soakLifecycle is one container: init with three streams, an exec'd
// process with three streams, both echoing a line, then teardown.
func (e *ctrEnv) soakLifecycle(ctx context.Context, n *notifier, id string) error {
	c, err := e.startStdioContainer(ctx, id)
	if err != nil {
		return err
	}
	pid, st, err := e.execute3(ctx, id, &prot.ProcessParameters{OCIProcess: procArgs("sh", "-c", "cat; echo exec-bye >&2")})
	if err != nil {
		c.st.Close()
		return err
	}
	err = e.roundTrip(ctx, id, pid, st, "via exec\n", "via exec\n", "exec-bye\n")
	st.Close()
	if err != nil {
		c.st.Close()
		return err
	}
	return e.finish(ctx, n, c)
}

// threads is the gcs's thread count.
func (e *ctrEnv) threads() (int, error) {
	pid, err := e.g.Pid()
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return len(ents), err
}

// settleRSS is settle followed by the memory trim's quiet period, so that
// the RSS read is the settled one.
func (e *ctrEnv) settleRSS(ctx context.Context, idle gauges) (gauges, error) {
	if _, err := e.settle(ctx, idle); err != nil {
		return gauges{}, err
	}
	time.Sleep(3 * time.Second)
	return e.settle(ctx, idle)
}
