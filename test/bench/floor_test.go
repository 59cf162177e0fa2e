package bench

import (
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// echoEnv set in the environment makes the test binary an echo peer for
// BenchmarkUnixPingPong instead of running tests.
const echoEnv = "OPENGCS_BENCH_ECHO_PEER"

// pingSize is about a small request frame: the 16-byte header and a short
// JSON body, as the Start request of BenchmarkRoundTrip.
const pingSize = 128

func TestMain(m *testing.M) {
	if os.Getenv(echoEnv) == "1" {
		echoPeer()
		return
	}
	os.Exit(m.Run())
}

// echoPeer answers every message read from fd 3 with the same bytes, on
// one P like the gcs, until EOF.
func echoPeer() {
	runtime.GOMAXPROCS(1)
	f := os.NewFile(3, "echo")
	c, err := net.FileConn(f)
	if err != nil {
		os.Exit(2)
	}
	f.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			os.Exit(0)
		}
		if _, err := c.Write(buf[:n]); err != nil {
			os.Exit(0)
		}
	}
}

// BenchmarkUnixPingPong is the floor of BenchmarkRoundTrip's sequential
// case: a pingSize-byte message written on a unix stream socket to
// another process (this test binary, re-executed as an echo peer on one
// P), which reads it and writes it back, read in full here before the
// next one. No framing, no JSON, no goroutine hand-off on either side:
// two process switches and a socket write and read each way. It reports
// rt/s.
func BenchmarkUnixPingPong(b *testing.B) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "ping"), os.NewFile(uintptr(fds[1]), "pong")
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), echoEnv+"=1")
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	theirs.Close()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		_ = cmd.Wait()
	})
	msg := make([]byte, pingSize)
	got := make([]byte, pingSize)
	round := func() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		round()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}
