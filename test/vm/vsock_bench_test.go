package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// benchStreamMiB is the stdout stream size of BenchmarkVsock/*/stdout.
const benchStreamMiB = 64

// gcsEndpoint is a gcs the benchmarks drive: in the VM over vsock, or
// bin/gcs on this machine over the unix transport.
type gcsEndpoint struct {
	c  *hostclient.Client
	tr transport.Transport
	// shell runs processes: the VM's busybox sh, or this machine's.
	shell string
	stop  func()
	vm    *VsockVM // nil for the unix transport
}

// cpuShare reports the share of the elapsed time QEMU and the back-end
// spent on the CPU since the previous call (a profile in two numbers: is
// the back-end the bottleneck?).
func (e gcsEndpoint) cpuMark(b *testing.B) func() {
	if e.vm == nil {
		return func() {}
	}
	q0, v0, err := e.vm.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	return func() {
		q1, v1, err := e.vm.CPUTime()
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(start).Seconds()
		b.ReportMetric(100*(q1-q0).Seconds()/el, "qemu-cpu-%")
		b.ReportMetric(100*(v1-v0).Seconds()/el, "backend-cpu-%")
	}
}

// BenchmarkVsock compares the same work over AF_VSOCK into the VM
// (through bin/vhost-vsock, under TCG) and over the unix transport to a
// gcs on this machine: bridge round trips, stdout relay throughput, and
// boot (or start) to a negotiated bridge.
func BenchmarkVsock(b *testing.B) {
	requireImage(b)
	endpoints := map[string]func(b *testing.B) gcsEndpoint{
		"vsock": func(b *testing.B) gcsEndpoint {
			v, c, _ := bootVsockB(b)
			return gcsEndpoint{c: c, tr: v.Transport, shell: "/bin/sh", stop: v.Kill, vm: v}
		},
		"unix": func(b *testing.B) gcsEndpoint {
			g := gcstest.Start(b, gcstest.Options{Args: []string{"-loglevel", "info"}})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := g.Connect(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return gcsEndpoint{c: c, tr: g.Transport, shell: "/bin/sh", stop: g.Stop}
		},
	}
	for _, name := range []string{"vsock", "unix"} {
		// Boots first, with nothing else running.
		b.Run(name+"/boot-to-bridge", func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				e := endpoints[name](b)
				total += time.Since(start)
				e.stop()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/boot")
		})
		e := endpoints[name](b)
		get := func(*testing.B) gcsEndpoint { return e }
		b.Run(name+"/roundtrip", func(b *testing.B) {
			e := get(b)
			ctx := context.Background()
			b.ResetTimer()
			done := e.cpuMark(b)
			for i := 0; i < b.N; i++ {
				if err := e.c.Start(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			done()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
		})
		b.Run(name+"/stdout", func(b *testing.B) {
			e := get(b)
			var ports hostclient.PortAllocator
			ctx := context.Background()
			b.SetBytes(benchStreamMiB << 20)
			defer e.cpuMark(b)()
			for i := 0; i < b.N; i++ {
				st, err := hostclient.OpenStdio(e.tr, &ports, false, true, false)
				if err != nil {
					b.Fatal(err)
				}
				params := &prot.ProcessParameters{CommandArgs: []string{e.shell, "-c", "dd if=/dev/zero bs=65536 count=$0 2>/dev/null", fmt.Sprint(benchStreamMiB * 16)},
					WorkingDirectory: "/", Environment: map[string]string{"PATH": GuestPath}, CreateStdOutPipe: true}
				pid, err := e.c.ExecuteProcess(ctx, prot.NullContainerID, params, st.Ports)
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Accept(ctx); err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, st.Conn(hostclient.StdOut))
				st.Close()
				if err != nil || n != benchStreamMiB<<20 {
					b.Fatalf("relayed %d bytes, %v", n, err)
				}
				if _, err := e.c.WaitForProcess(ctx, prot.NullContainerID, pid, prot.InfiniteWaitTimeout); err != nil {
					b.Fatal(err)
				}
			}
		})
		e.stop()
	}
}

// bootVsockB is bootVsock for benchmarks; the VM lives until b ends.
func bootVsockB(b *testing.B) (*VsockVM, *hostclient.Client, time.Duration) {
	b.Helper()
	dir, err := os.MkdirTemp("", "vsvm")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	v, err := StartVsock(VsockConfig{Image: image, Dir: dir, Backend: requireBackend(b), GCSArgs: GCSTestArgs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	conn, err := v.AcceptBridge(ctx)
	if err != nil {
		b.Fatalf("%v\n%s", err, v.Logs())
	}
	c := hostclient.New(conn)
	b.Cleanup(func() { c.Close() })
	if _, err := c.Negotiate(ctx); err != nil {
		b.Fatalf("negotiate: %v\n%s", err, v.Logs())
	}
	return v, c, time.Since(v.Started)
}
