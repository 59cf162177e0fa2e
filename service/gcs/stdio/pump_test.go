package stdio

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// The splice path must actually engage for a pipe and a unix socket (the
// benchmark's speed-up depends on it), and move the bytes intact.
func TestSpliceEngagesPipeToUnixSocket(t *testing.T) {
	h := newTestHost(t)
	port, accepted := h.listen()
	c, err := h.tr.Dial(t.Context(), port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := recv(t, accepted, "accept")
	got := drain(host)

	rd, wr, err := newPipe(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	go func() {
		wr.Write(msg)
		wr.Close()
	}()
	p := &outPump{name: "stdout", src: rd, dst: c, idle: time.Second, ph: newPhase(), log: newOptions(nil).log}
	n, handled, err := p.spliceAll()
	if !handled || err != nil || n != int64(len(msg)) {
		t.Fatalf("spliceAll = %d, handled %v, %v; want %d bytes by splice", n, handled, err, len(msg))
	}
	c.Close()
	if d := recv(t, got, "host data"); !bytes.Equal(d.data, msg) {
		t.Fatalf("host got %d bytes, want the %d written", len(d.data), len(msg))
	}
}

// A writer that keeps refilling the pipe while the relay runs exercises the
// race between "pipe empty" and "socket full" in the splice loop (a wrong
// guess there parks the relay on a socket that never becomes writable
// again).
func TestPipeRelayConcurrentWriter(t *testing.T) {
	const total = 32 << 20
	for _, tc := range []struct {
		name  string
		chunk int
		opts  []Option
	}{
		{"1MiB writes, 64KiB pipe", 1 << 20, []Option{WithPipeSize(0)}},
		{"1MiB writes, 1MiB pipe", 1 << 20, nil},
		{"4KiB writes, 64KiB pipe", 4 << 10, []Option{WithPipeSize(0)}},
		{"100B writes, 1MiB pipe", 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			r, err := NewPipeRelay(Streams{Stdout: true}, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			set, hs := h.connect(Streams{Stdout: true})
			w, err := dupFile(r.ChildFiles().Out)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.CloseChildEnds(); err != nil {
				t.Fatal(err)
			}
			if err := r.Start(set); err != nil {
				t.Fatal(err)
			}
			got := benchSink(hs.Out)
			wrote := make(chan error, 1)
			go func() { wrote <- writeChunks(w, tc.chunk, total) }()
			if err := recv(t, wrote, "writer"); err != nil {
				t.Fatal(err)
			}
			if err := waitRelay(t, r); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if n := recv(t, got, "host byte count"); n != total {
				t.Fatalf("host got %d bytes, want %d", n, total)
			}
		})
	}
}

func writeChunks(w *os.File, chunk, total int) error {
	defer w.Close()
	buf := make([]byte, chunk)
	for left := total; left > 0; left -= chunk {
		if _, err := w.Write(buf[:min(chunk, left)]); err != nil {
			return err
		}
	}
	return nil
}
