package stdio

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// startPiped creates a pipe relay for want, connects it to the host and
// starts argv on the child ends.
func startPiped(t *testing.T, h *testHost, want Streams, argv []string, opts ...Option) (*PipeRelay, hostSide, *exec.Cmd) {
	t.Helper()
	r, err := NewPipeRelay(want, opts...)
	if err != nil {
		t.Fatalf("NewPipeRelay: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	set, hs := h.connect(want)
	if err := r.Start(set); err != nil {
		set.Close()
		t.Fatalf("Start: %v", err)
	}
	files := r.ChildFiles()
	cmd := exec.Command(argv[0], argv[1:]...)
	// Unset fields stay nil: os/exec substitutes /dev/null.
	if files.In != nil {
		cmd.Stdin = files.In
	}
	if files.Out != nil {
		cmd.Stdout = files.Out
	}
	if files.Err != nil {
		cmd.Stderr = files.Err
	}
	startCmd(t, cmd)
	if err := r.CloseChildEnds(); err != nil {
		t.Fatalf("CloseChildEnds: %v", err)
	}
	return r, hs, cmd
}

func TestPipeRelayCatEcho(t *testing.T) {
	h := newTestHost(t)
	r, hs, cmd := startPiped(t, h, Streams{Stdin: true, Stdout: true}, []string{"cat"})
	out := drain(hs.Out)
	msg := []byte(strings.Repeat("hello from the host\n", 1000))
	if _, err := hs.In.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := hs.In.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(t, cmd); err != nil {
		t.Fatalf("cat: %v", err)
	}
	if err := waitRelay(t, r); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	got := recv(t, out, "stdout")
	if got.err != nil || !bytes.Equal(got.data, msg) {
		t.Fatalf("stdout = %d bytes (err %v), want the %d bytes sent", len(got.data), got.err, len(msg))
	}
	// The relay closed stdin too: the host reads EOF on it.
	_ = hs.In.SetReadDeadline(time.Now().Add(guard))
	if n, err := hs.In.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("host stdin after Wait: %d, %v; want EOF", n, err)
	}
}

func TestPipeRelayOutputSeparation(t *testing.T) {
	tests := []struct {
		name     string
		want     Streams
		script   string
		stdout   string
		stderr   string
		exitCode int
	}{
		{"both", Streams{Stdout: true, Stderr: true}, "echo out1; echo err1 >&2; echo out2; echo err2 >&2", "out1\nout2\n", "err1\nerr2\n", 0},
		{"stderr only", Streams{Stderr: true}, "echo err >&2; exit 3", "", "err\n", 3},
		// An unrequested stdout is /dev/null for an exec'd process.
		{"stdout only", Streams{Stdout: true}, "echo out; echo lost >&2", "out\n", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			r, hs, cmd := startPiped(t, h, tc.want, []string{"sh", "-c", tc.script})
			var outCh, errCh <-chan drained
			if hs.Out != nil {
				outCh = drain(hs.Out)
			}
			if hs.Err != nil {
				errCh = drain(hs.Err)
			}
			err := waitCmd(t, cmd)
			if code := cmd.ProcessState.ExitCode(); code != tc.exitCode {
				t.Fatalf("exit code %d (%v), want %d", code, err, tc.exitCode)
			}
			if err := waitRelay(t, r); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if outCh != nil {
				if got := recv(t, outCh, "stdout"); string(got.data) != tc.stdout {
					t.Fatalf("stdout = %q, want %q", got.data, tc.stdout)
				}
			}
			if errCh != nil {
				if got := recv(t, errCh, "stderr"); string(got.data) != tc.stderr {
					t.Fatalf("stderr = %q, want %q", got.data, tc.stderr)
				}
			}
		})
	}
}

// The container-init flow: all pipes exist before the host names its
// streams; Start closes the relay ends of the unrequested ones.
func TestPipeRelayInitUnrequestedStreams(t *testing.T) {
	h := newTestHost(t)
	r, err := NewPipeRelay(AllStreams())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	files := r.ChildFiles()
	// stdin unrequested -> EOF; stderr unrequested -> writing to it raises
	// SIGPIPE.
	cmd := exec.Command("sh", "-c", `cat; echo cat-done; echo x >&2; echo not-reached`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files.In, files.Out, files.Err
	set, hs := h.connect(Streams{Stdout: true})
	if err := r.Start(set); err != nil {
		t.Fatal(err)
	}
	startCmd(t, cmd)
	if err := r.CloseChildEnds(); err != nil {
		t.Fatal(err)
	}
	out := drain(hs.Out)
	_ = waitCmd(t, cmd)
	if err := waitRelay(t, r); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := recv(t, out, "stdout"); string(got.data) != "cat-done\n" {
		t.Fatalf("stdout = %q", got.data)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("process status %v, want killed by SIGPIPE", cmd.ProcessState)
	}
}

func TestPipeRelayStdinEOF(t *testing.T) {
	h := newTestHost(t)
	r, hs, cmd := startPiped(t, h, Streams{Stdin: true, Stdout: true},
		[]string{"sh", "-c", "n=$(wc -c); echo \"eof after $n bytes\""})
	out := drain(hs.Out)
	if _, err := hs.In.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	// Without the half-close reaching the process, wc never finishes.
	if err := hs.In.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(t, cmd); err != nil {
		t.Fatalf("sh: %v", err)
	}
	if err := waitRelay(t, r); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := recv(t, out, "stdout"); string(got.data) != "eof after 5 bytes\n" {
		t.Fatalf("stdout = %q", got.data)
	}
}

// A process that exits while the host still holds stdin open: Wait must
// not depend on the host closing stdin.
func TestPipeRelayExitWithStdinOpen(t *testing.T) {
	h := newTestHost(t)
	r, hs, cmd := startPiped(t, h, Streams{Stdin: true, Stdout: true}, []string{"sh", "-c", "echo bye"})
	out := drain(hs.Out)
	if err := waitCmd(t, cmd); err != nil {
		t.Fatal(err)
	}
	if err := waitRelay(t, r); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := recv(t, out, "stdout"); string(got.data) != "bye\n" {
		t.Fatalf("stdout = %q", got.data)
	}
}

func randomFile(t *testing.T, size int) (string, [32]byte) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, sha256.Sum256(data)
}

// slowReader drains c to EOF in small reads with pauses, hashing what it
// gets, then closes c.
func hashDrain(c io.ReadCloser, pause time.Duration) <-chan [32]byte {
	ch := make(chan [32]byte, 1)
	go func() {
		hsh := sha256.New()
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			hsh.Write(buf[:n])
			if err != nil {
				break
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
		c.Close()
		var sum [32]byte
		copy(sum[:], hsh.Sum(nil))
		ch <- sum
	}()
	return ch
}

func TestPipeRelay64MiB(t *testing.T) {
	const size = 64 << 20
	path, want := randomFile(t, size)
	tests := []struct {
		name  string
		pause time.Duration // host pause between 256 KiB reads
		opts  []Option
		early bool // arm the drain from the start
	}{
		{"fast host", 0, nil, false},
		// The drain is armed the whole time with a short idle period while
		// the host reads slowly: only silence may end it, not elapsed time.
		{"slow host, drain armed", 2 * time.Millisecond, []Option{WithIdleTimeout(50 * time.Millisecond)}, true},
		{"copy-size pipes", 0, []Option{WithPipeSize(0)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			r, hs, cmd := startPiped(t, h, Streams{Stdout: true}, []string{"cat", path}, tc.opts...)
			if tc.early {
				r.ProcessExited()
			}
			got := hashDrain(hs.Out, tc.pause)
			if err := waitCmd(t, cmd); err != nil {
				t.Fatal(err)
			}
			if err := waitRelay(t, r); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if sum := recv(t, got, "stdout hash"); sum != want {
				t.Fatal("64 MiB through stdout arrived corrupted or truncated")
			}
		})
	}
}

// The most reported relay bug: a background child keeps stdout open after
// the process exited. Wait must still return, with the output produced
// before, and the host must see EOF.
func TestPipeRelayBackgroundChildBoundedDrain(t *testing.T) {
	h := newTestHost(t)
	r, hs, cmd := startPiped(t, h, Streams{Stdout: true, Stderr: true},
		[]string{"sh", "-c", "echo before; sleep 60 & echo after; echo err >&2"},
		WithIdleTimeout(200*time.Millisecond))
	out, errs := drain(hs.Out), drain(hs.Err)
	if err := waitCmd(t, cmd); err != nil {
		t.Fatal(err)
	}
	err := waitRelay(t, r)
	if !errors.Is(err, ErrDrainIdle) {
		t.Fatalf("Wait = %v, want ErrDrainIdle", err)
	}
	if got := recv(t, out, "stdout"); got.err != nil || string(got.data) != "before\nafter\n" {
		t.Fatalf("stdout = %q, %v", got.data, got.err)
	}
	if got := recv(t, errs, "stderr"); string(got.data) != "err\n" {
		t.Fatalf("stderr = %q", got.data)
	}
}

func TestPipeRelayResizeHasNoConsole(t *testing.T) {
	r, err := NewPipeRelay(AllStreams())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Resize(24, 80)
	var pe *prot.Error
	if !errors.Is(err, ErrNoConsole) || !errors.As(err, &pe) || pe.Result != prot.HrFail {
		t.Fatalf("Resize = %v, want ErrNoConsole carrying E_FAIL", err)
	}
}

func TestPipeRelayStartRules(t *testing.T) {
	h := newTestHost(t)
	r, err := NewPipeRelay(Streams{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	set, _ := h.connect(Streams{Stdin: true, Stdout: true})
	if err := r.Start(set); !errors.Is(err, ErrNoPipe) {
		t.Fatalf("Start with a stdin connection but no stdin pipe = %v, want ErrNoPipe", err)
	}
	set.In.Close()
	set.In = nil
	if err := r.Start(set); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(&ConnectionSet{}); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start = %v, want ErrAlreadyStarted", err)
	}
	r.Close()
	r2, err := NewPipeRelay(Streams{})
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	if err := r2.Start(nil); !errors.Is(err, ErrRelayClosed) {
		t.Fatalf("Start after Close = %v, want ErrRelayClosed", err)
	}
}

// Close aborts a relay whose process never exits and whose host never
// reads, and leaves no descriptors behind.
func TestPipeRelayCloseAbortsAndReleases(t *testing.T) {
	h := newTestHost(t)
	warm, _ := h.connect(Streams{Stdout: true})
	warm.Close()
	before := fdCount(t)

	r, err := NewPipeRelay(AllStreams())
	if err != nil {
		t.Fatal(err)
	}
	set, hs := h.connect(AllStreams())
	if err := r.Start(set); err != nil {
		t.Fatal(err)
	}
	// Fill stdout beyond every buffer while the host does not read.
	files := r.ChildFiles()
	wrote := make(chan error, 1)
	go func() {
		_, err := files.Out.Write(make([]byte, 8<<20))
		wrote <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the relay block on the full socket
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	recv(t, done, "Close")
	if err := recv(t, wrote, "child write"); err == nil {
		t.Fatal("8 MiB write into an aborted relay succeeded")
	}
	for _, c := range []interface{ Close() error }{hs.In, hs.Out, hs.Err} {
		c.Close()
	}
	// Listeners (closed after their accept) and the host's accepted ends
	// were all opened after the first count and are closed again.
	if after := fdCount(t); after != before {
		t.Fatalf("descriptors: %d before, %d after Close", before, after)
	}
}
