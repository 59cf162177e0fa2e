package stdio

import (
	"bytes"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startTty runs argv as a session leader on a fresh pty and relays it.
func startTty(t *testing.T, h *testHost, want Streams, argv []string, opts ...Option) (*TtyRelay, hostSide, *exec.Cmd) {
	t.Helper()
	master, slave, err := OpenPty()
	if err != nil {
		t.Fatalf("OpenPty: %v", err)
	}
	defer slave.Close()
	r, err := NewTtyRelay(master, opts...)
	if err != nil {
		t.Fatalf("NewTtyRelay: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TERM=dumb"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	startCmd(t, cmd)
	set, hs := h.connect(want)
	if err := r.Start(set); err != nil {
		set.Close()
		t.Fatalf("Start: %v", err)
	}
	return r, hs, cmd
}

func TestTtyRelayResizeAndSize(t *testing.T) {
	tests := []struct {
		name          string
		want          Streams
		height, width uint16
	}{
		{"in+out", Streams{Stdin: true, Stdout: true}, 40, 120},
		{"with idle stderr", AllStreams(), 17, 233},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			r, hs, cmd := startTty(t, h, tc.want, []string{"sh"})
			if err := r.Resize(tc.height, tc.width); err != nil {
				t.Fatalf("Resize: %v", err)
			}
			out := drain(hs.Out)
			var errs <-chan drained
			if hs.Err != nil {
				errs = drain(hs.Err)
			}
			if _, err := hs.In.Write([]byte("stty size; exit 7\n")); err != nil {
				t.Fatal(err)
			}
			_ = waitCmd(t, cmd)
			if code := cmd.ProcessState.ExitCode(); code != 7 {
				t.Fatalf("sh exit code %d, want 7", code)
			}
			if err := waitRelay(t, r); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			got := recv(t, out, "pty output")
			want := []byte(itoa(int(tc.height)) + " " + itoa(int(tc.width)) + "\r\n")
			if !bytes.Contains(got.data, want) {
				t.Fatalf("pty output %q does not contain %q", got.data, want)
			}
			if errs != nil {
				if e := recv(t, errs, "stderr"); len(e.data) != 0 || e.err != nil {
					t.Fatalf("tty stderr carried %q (%v), want nothing", e.data, e.err)
				}
			}
			// After the relay closed, resizing is a silent no-op.
			if err := r.Resize(10, 10); err != nil {
				t.Fatalf("Resize after close: %v", err)
			}
		})
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// A background child that ignores SIGHUP (inherited from the shell, so
// there is no window before the trap is set) keeps the pty slave open after the
// shell exits; Wait must still return.
func TestTtyRelayBackgroundChildBoundedDrain(t *testing.T) {
	h := newTestHost(t)
	r, hs, cmd := startTty(t, h, Streams{Stdin: true, Stdout: true},
		[]string{"sh", "-c", "trap '' HUP; sleep 60 & echo started"},
		WithIdleTimeout(200*time.Millisecond))
	out := drain(hs.Out)
	if err := waitCmd(t, cmd); err != nil {
		t.Fatal(err)
	}
	if err := waitRelay(t, r); !errors.Is(err, ErrDrainIdle) {
		t.Fatalf("Wait = %v, want ErrDrainIdle", err)
	}
	if got := recv(t, out, "pty output"); !bytes.Contains(got.data, []byte("started")) {
		t.Fatalf("pty output = %q", got.data)
	}
}
