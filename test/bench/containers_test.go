package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// reportSideBySide reports the gcs and baseline figures per operation and
// their ratio.
func reportSideBySide(b *testing.B, gcs, base time.Duration, gcsUnit, baseUnit, ratioUnit string) {
	n := float64(b.N)
	b.ReportMetric(float64(gcs.Nanoseconds())/n, gcsUnit)
	b.ReportMetric(float64(base.Nanoseconds())/n, baseUnit)
	b.ReportMetric(float64(gcs)/float64(base), ratioUnit)
}

// pairs collects the ratio gcs/baseline of each iteration, for the median.
type pairs []float64

func (p *pairs) add(gcs, base time.Duration) {
	if base > 0 {
		*p = append(*p, float64(gcs)/float64(base))
	}
}

// median is the median of the pair ratios (0 without any).
func (p pairs) median() float64 {
	if len(p) == 0 {
		return 0
	}
	s := slices.Clone(p)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// lifecycleCases are the containers of the lifecycle and exec benchmarks:
// `true` without stdio (the figure) and `echo hi` with stdout
// relayed to the host.
var lifecycleCases = []struct {
	name   string
	args   []string
	stdout bool
}{
	{"true", []string{"true"}, false},
	{"echo", []string{"echo", "hi"}, true},
}

// BenchmarkContainerLifecycle runs, alternately in the same loop, one
// container through the gcs (Create, Start, init started with or without
// stdout relayed, output to EOF, Wait, notification,
// DeleteContainerState) and one plain `runc run --no-pivot` of a bundle
// with the config the gcs wrote, stdout read to EOF. The CombinedLayers
// requests around each gcs container are reported separately
// (layers-ns/op): the baseline has no overlay. A third column (runc-split)
// runs the same bundle as runc create, runc start, wait, runc delete: what
// three runc executions cost. gcs/runc is the ratio of the totals,
// gcs/runc-median the median of the per-iteration ratios.
func BenchmarkContainerLifecycle(b *testing.B) {
	for _, tc := range lifecycleCases {
		b.Run(tc.name, func(b *testing.B) { benchLifecycle(b, tc.args, tc.stdout) })
	}
}

func benchLifecycle(b *testing.B, args []string, stdout bool) {
	e := newCtrEnv(b)
	want := ""
	if stdout {
		want = "hi\n"
	}
	// Warm up both paths, and take the baseline's config from the gcs's
	// first container.
	warm := newContainerID("gcs")
	ctx, cancel := ctxFor(60 * time.Second)
	defer cancel()
	if err := e.addLayers(ctx, warm); err != nil {
		b.Fatal(err)
	}
	pid, st, err := e.startContainer(ctx, warm, e.spec(warm, args...), stdout)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.baselineBundle(warm); err != nil {
		b.Fatal(err)
	}
	if stdout {
		_, _ = io.ReadAll(st.Conn(hostclient.StdOut))
	}
	st.Close()
	if _, err := e.c.WaitForProcess(ctx, warm, pid, prot.InfiniteWaitTimeout); err != nil {
		b.Fatal(err)
	}
	if err := e.notification(ctx, warm); err != nil {
		b.Fatal(err)
	}
	if err := e.c.DeleteContainerState(ctx, warm); err != nil {
		b.Fatal(err)
	}
	if err := e.removeLayers(ctx, warm); err != nil {
		b.Fatal(err)
	}

	childSubreaper(b)
	var gcsTime, runcTime, splitTime, layerTime time.Duration
	var last [3]time.Duration
	gcsRun := func() error {
		id := newContainerID("gcs")
		ctr, layers, out, err := e.gcsLifecycleStdio(id, stdout, args...)
		if err != nil {
			return err
		}
		if string(out) != want {
			return fmt.Errorf("gcs container output %q", out)
		}
		gcsTime += ctr
		layerTime += layers
		last[0] = ctr
		return nil
	}
	baseline := func(kind string, run func(string) ([]byte, error), total, last *time.Duration) func() error {
		return func() error {
			id := newContainerID(kind)
			if err := e.setBaselineConfig(id, args...); err != nil {
				return err
			}
			t0 := time.Now()
			out, err := run(id)
			d := time.Since(t0)
			*total += d
			*last = d
			if err != nil {
				return err
			}
			if string(out) != want {
				return fmt.Errorf("%s container output %q", kind, out)
			}
			return nil
		}
	}
	// The order rotates every iteration: a container's teardown leaves
	// deferred kernel work (cgroup and mount release) that slows whatever
	// runs next, so each variant follows each other one equally often.
	variants := []func() error{gcsRun, baseline("runc", e.runcRun, &runcTime, &last[1]), baseline("split", e.runcSplit, &splitTime, &last[2])}
	var ratios, splitRatios pairs
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range variants {
			if err := variants[(i+k)%len(variants)](); err != nil {
				b.Fatal(err)
			}
		}
		ratios.add(last[0], last[1])
		splitRatios.add(last[0], last[2])
	}
	reportSideBySide(b, gcsTime, runcTime, "gcs-ns/op", "runc-ns/op", "gcs/runc")
	b.ReportMetric(ratios.median(), "gcs/runc-median")
	b.ReportMetric(float64(splitTime.Nanoseconds())/float64(b.N), "runc-split-ns/op")
	b.ReportMetric(splitRatios.median(), "gcs/runc-split-median")
	b.ReportMetric(float64(layerTime.Nanoseconds())/float64(b.N), "layers-ns/op")
	b.ReportMetric(float64(gcsTime+layerTime)/float64(runcTime), "gcs+layers/runc")
}

// BenchmarkExec runs, alternately and swapping the order every iteration,
// a process exec'd through the gcs (ExecuteProcess with or without stdout
// relayed, output to EOF, WaitForProcess) in a gcs container, and
// `runc exec --detach --pid-file` of the same command in a baseline
// container started from the same config, with stdout (if any) read to
// EOF and the process reaped by this process (a child subreaper).
// gcs/runc-median is the median of the per-iteration ratios.
func BenchmarkExec(b *testing.B) {
	for _, tc := range lifecycleCases {
		b.Run(tc.name, func(b *testing.B) { benchExec(b, tc.args, tc.stdout) })
	}
}

func benchExec(b *testing.B, args []string, stdout bool) {
	e := newCtrEnv(b)
	ctx, cancel := ctxFor(60 * time.Second)
	defer cancel()
	want := ""
	if stdout {
		want = "hi\n"
	}
	id := newContainerID("gcs")
	if err := e.addLayers(ctx, id); err != nil {
		b.Fatal(err)
	}
	initPid, st, err := e.startContainer(ctx, id, e.spec(id, "sleep", "100000"), false)
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	b.Cleanup(func() {
		ctx, cancel := ctxFor(60 * time.Second)
		defer cancel()
		_ = e.c.Shutdown(ctx, id, true)
		_, _ = e.c.WaitForProcess(ctx, id, initPid, prot.InfiniteWaitTimeout)
		_ = e.c.DeleteContainerState(ctx, id)
		_ = e.removeLayers(ctx, id)
	})
	if err := e.baselineBundle(id); err != nil {
		b.Fatal(err)
	}
	rid := newContainerID("runc")
	if err := e.setBaselineConfig(rid, "sleep", "100000"); err != nil {
		b.Fatal(err)
	}
	if err := e.runcStartDetached(rid); err != nil {
		b.Fatal(err)
	}
	childSubreaper(b)

	proc := procArgs(args...)
	gcsExec := func() error {
		pid, st, err := e.execute(ctx, id, proc, stdout)
		if err != nil {
			return err
		}
		defer st.Close()
		var out []byte
		if stdout {
			out, err = io.ReadAll(st.Conn(hostclient.StdOut))
			st.Conn(hostclient.StdOut).Close()
			if err != nil {
				return err
			}
		}
		code, err := e.c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout)
		if err != nil {
			return err
		}
		if code != 0 || string(out) != want {
			return fmt.Errorf("exec: exit %d, output %q", code, out)
		}
		return nil
	}
	runcExec := func() error {
		out, err := e.runcExecDetached(rid, stdout, args...)
		if err == nil && string(out) != want {
			err = fmt.Errorf("runc exec output %q", out)
		}
		return err
	}
	for _, f := range []func() error{gcsExec, runcExec} {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}

	var gcsTime, runcTime time.Duration
	var ratios pairs
	timed := func(f func() error) time.Duration {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var g, r time.Duration
		if i%2 == 0 {
			g, r = timed(gcsExec), timed(runcExec)
		} else {
			r, g = timed(runcExec), timed(gcsExec)
		}
		gcsTime += g
		runcTime += r
		ratios.add(g, r)
	}
	reportSideBySide(b, gcsTime, runcTime, "gcs-ns/op", "runc-ns/op", "gcs/runc")
	b.ReportMetric(ratios.median(), "gcs/runc-median")
}

// streamMiB is what one throughput iteration moves.
const streamMiB = 1024

// BenchmarkStdoutThroughput moves streamMiB MiB written by
// `busybox dd if=/dev/zero bs=1M` to the host, three ways in each
// iteration:
//
//   - gcs: dd is a container's init, its stdout relayed by the gcs over the
//     unix transport;
//   - copyloop: dd (a plain process) writes into a pipe, a 64 KiB
//     read/write loop in this process copies the pipe into a unix socket;
//   - raw: dd writes straight into the unix socket (the ceiling).
//
// The host side reads each with the same 1 MiB buffer loop; the time runs
// from the first byte to EOF. Reported: MiB/s of each, gcs/copyloop and
// gcs/raw.
func BenchmarkStdoutThroughput(b *testing.B) {
	e := newCtrEnv(b)
	dd := []string{"/bin/busybox", "dd", "if=/dev/zero", "bs=1M", "count=" + strconv.Itoa(streamMiB)}
	const want = streamMiB << 20

	gcsRun := func() (time.Duration, error) {
		ctx, cancel := ctxFor(120 * time.Second)
		defer cancel()
		id := newContainerID("gcs")
		if err := e.addLayers(ctx, id); err != nil {
			return 0, err
		}
		defer func() { _ = e.removeLayers(ctx, id) }()
		pid, st, err := e.startContainer(ctx, id, e.spec(id, dd...), true)
		if err != nil {
			return 0, err
		}
		defer func() { _ = e.c.DeleteContainerState(ctx, id) }()
		defer st.Close()
		n, d, err := sink(st.Conn(hostclient.StdOut))
		st.Conn(hostclient.StdOut).Close()
		if err != nil {
			return 0, err
		}
		if n != want {
			return 0, fmt.Errorf("gcs relayed %d bytes, want %d", n, want)
		}
		if code, err := e.c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout); err != nil || code != 0 {
			return 0, fmt.Errorf("wait %s: exit %d: %v", id, code, err)
		}
		return d, e.notification(ctx, id)
	}

	// runDD starts dd with stdout on out and returns a function waiting for
	// it.
	runDD := func(out *os.File) (func() error, error) {
		cmd := exec.Command(dd[0], dd[1:]...)
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return cmd.Wait, nil
	}

	copyLoopRun := func() (time.Duration, error) {
		guest, host := socketPair(b)
		defer host.Close()
		r, w, err := os.Pipe()
		if err != nil {
			guest.Close()
			return 0, err
		}
		wait, err := runDD(w)
		w.Close()
		if err != nil {
			r.Close()
			guest.Close()
			return 0, err
		}
		go func() {
			_, _ = copyLoop(guest, r)
			r.Close()
			guest.Close()
		}()
		n, d, err := sink(host)
		if werr := wait(); err == nil {
			err = werr
		}
		if err == nil && n != want {
			err = fmt.Errorf("copy loop moved %d bytes, want %d", n, want)
		}
		return d, err
	}

	rawRun := func() (time.Duration, error) {
		guest, host := socketPair(b)
		defer host.Close()
		f, err := guest.File()
		guest.Close()
		if err != nil {
			return 0, err
		}
		wait, err := runDD(f)
		f.Close()
		if err != nil {
			return 0, err
		}
		n, d, err := sink(host)
		if werr := wait(); err == nil {
			err = werr
		}
		if err == nil && n != want {
			err = fmt.Errorf("raw socket moved %d bytes, want %d", n, want)
		}
		return d, err
	}

	runs := []func() (time.Duration, error){gcsRun, copyLoopRun, rawRun}
	var total [3]time.Duration
	for i := 0; i < b.N; i++ {
		for k, run := range runs {
			d, err := run()
			if err != nil {
				b.Fatal(err)
			}
			total[k] += d
		}
	}
	rate := func(d time.Duration) float64 {
		return float64(streamMiB) * float64(b.N) / d.Seconds()
	}
	b.ReportMetric(rate(total[0]), "gcs-MiB/s")
	b.ReportMetric(rate(total[1]), "copyloop-MiB/s")
	b.ReportMetric(rate(total[2]), "raw-MiB/s")
	b.ReportMetric(rate(total[0])/rate(total[1]), "gcs/copyloop")
	b.ReportMetric(rate(total[0])/rate(total[2]), "gcs/raw")
}

// lifecycles is how many containers BenchmarkLifecycleRSS runs between
// its two measurements.
const lifecycles = 50

// BenchmarkLifecycleRSS reports the gcs's resident memory when idle after
// negotiation, right after lifecycles containers went through it, and once
// it has settled again (the Go runtime returns freed heap to the system in
// the background; the settled figure is polled every 200 ms for up to
// 10 s, until it is back within 1 MiB of idle).
func BenchmarkLifecycleRSS(b *testing.B) {
	var idle, after, settled int64
	for i := 0; i < b.N; i++ {
		e := newCtrEnv(b)
		time.Sleep(200 * time.Millisecond)
		rss0, err := e.g.RSS()
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < lifecycles; k++ {
			if _, _, _, err := e.gcsLifecycle(newContainerID("gcs"), "echo", "hi"); err != nil {
				b.Fatal(err)
			}
		}
		rss1, err := e.g.RSS()
		if err != nil {
			b.Fatal(err)
		}
		rss2 := rss1
		for poll := 0; poll < 50 && rss2 > rss0+1<<20; poll++ {
			time.Sleep(200 * time.Millisecond)
			if rss2, err = e.g.RSS(); err != nil {
				b.Fatal(err)
			}
		}
		idle += rss0
		after += rss1
		settled += rss2
	}
	mib := func(v int64) float64 { return float64(v) / float64(b.N) / (1 << 20) }
	b.ReportMetric(mib(idle), "idle-RSS-MiB")
	b.ReportMetric(mib(after), "after-RSS-MiB")
	b.ReportMetric(mib(settled), "settled-RSS-MiB")
}
