package stdio

import (
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

const benchChunk = 1 << 20

// benchSink is the host end: it discards everything with large reads and
// reports the byte count when it sees EOF, then closes.
func benchSink(c net.Conn) <-chan int64 {
	ch := make(chan int64, 1)
	go func() {
		buf := make([]byte, 1<<20)
		var n int64
		for {
			m, err := c.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		c.Close()
		ch <- n
	}()
	return ch
}

// benchWriter writes n chunks of zeros into w (the process's stdout), then
// closes it.
func benchWriter(w *os.File, n int) <-chan error {
	ch := make(chan error, 1)
	go func() {
		buf := make([]byte, benchChunk)
		var err error
		for i := 0; i < n && err == nil; i++ {
			_, err = w.Write(buf)
		}
		w.Close()
		ch <- err
	}()
	return ch
}

var benchPipeSizes = []struct {
	name string
	size int
}{{"pipe=64KiB", 0}, {"pipe=1MiB", 1 << 20}}

// BenchmarkStdoutRelay measures PipeRelay's stdout path: an in-process
// writer on the child end, the relay (splice), a unix socket peer
// discarding.
func BenchmarkStdoutRelay(b *testing.B) {
	for _, ps := range benchPipeSizes {
		b.Run(ps.name, func(b *testing.B) {
			h := newTestHost(b)
			port, accepted := h.listen()
			r, err := NewPipeRelay(Streams{Stdout: true}, WithPipeSize(ps.size))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			c, err := h.tr.Dial(b.Context(), port)
			if err != nil {
				b.Fatal(err)
			}
			host := <-accepted
			got := benchSink(host)
			// Hand the child end to the writer; the relay must not close it.
			child := r.ChildFiles().Out
			w, err := dupFile(child)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.CloseChildEnds(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchChunk)
			b.ResetTimer()
			if err := r.Start(&ConnectionSet{Out: c}); err != nil {
				b.Fatal(err)
			}
			werr := benchWriter(w, b.N)
			n := <-got
			b.StopTimer()
			if err := <-werr; err != nil {
				b.Fatal(err)
			}
			if err := r.Wait(); err != nil {
				b.Fatal(err)
			}
			if n != int64(b.N)*benchChunk {
				b.Fatalf("relayed %d bytes, want %d", n, int64(b.N)*benchChunk)
			}
		})
	}
}

// BenchmarkCopyLoopBaseline is the naive relay: a 64 KiB read/write loop
// from a pipe to a unix socket, same writer and same peer.
func BenchmarkCopyLoopBaseline(b *testing.B) {
	for _, ps := range benchPipeSizes {
		b.Run(ps.name, func(b *testing.B) {
			h := newTestHost(b)
			port, accepted := h.listen()
			pr, pw, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			defer pr.Close()
			if ps.size > 0 {
				if _, err := unix.FcntlInt(pr.Fd(), unix.F_SETPIPE_SZ, ps.size); err != nil {
					b.Fatal(err)
				}
			}
			c, err := h.tr.Dial(b.Context(), port)
			if err != nil {
				b.Fatal(err)
			}
			host := <-accepted
			got := benchSink(host)
			b.SetBytes(benchChunk)
			b.ResetTimer()
			werr := benchWriter(pw, b.N)
			buf := make([]byte, 64<<10)
			for {
				n, rerr := pr.Read(buf)
				if n > 0 {
					if _, err := c.Write(buf[:n]); err != nil {
						b.Fatal(err)
					}
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					b.Fatal(rerr)
				}
			}
			c.Close()
			n := <-got
			b.StopTimer()
			if err := <-werr; err != nil {
				b.Fatal(err)
			}
			if n != int64(b.N)*benchChunk {
				b.Fatalf("copied %d bytes, want %d", n, int64(b.N)*benchChunk)
			}
		})
	}
}

func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		nfd  int
		derr error
	)
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup: %w", derr)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}
