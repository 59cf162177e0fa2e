package vsockexec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// TestMain lets the test binary act as vsockexec itself when re-executed
// with VSOCKEXEC_TEST_AS_MAIN set, so the tests run the real Exec (which
// replaces the process) and Relay in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("VSOCKEXEC_TEST_AS_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], 10*time.Millisecond))
	}
	os.Exit(m.Run())
}

func self(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "VSOCKEXEC_TEST_AS_MAIN=1")
	return cmd
}

func TestParse(t *testing.T) {
	tests := []struct {
		args    []string
		want    Options
		wantErr error
	}{
		{[]string{"-e", "109", "/bin/gcs", "-v4"}, Options{Stderr: 109, Transport: "vsock", Argv: []string{"/bin/gcs", "-v4"}}, nil},
		{[]string{"-r", "-o", "109", "-e", "109", "gcs"}, Options{Relay: true, Stdout: 109, Stderr: 109, Transport: "vsock", Argv: []string{"gcs"}}, nil},
		{[]string{"-i=1", "-transport", "unix:/x", "cat", "-e", "5"}, Options{Stdin: 1, Transport: "unix:/x", Argv: []string{"cat", "-e", "5"}}, nil},
		{[]string{"-e", "109"}, Options{}, ErrUsage},
		{[]string{"-q", "x"}, Options{}, ErrUsage},
		{[]string{"-e", "nope", "x"}, Options{}, ErrUsage},
		{[]string{"-r", "-i", "3", "x"}, Options{}, ErrNoRelayPort},
	}
	for _, tc := range tests {
		got, err := Parse(tc.args)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Parse(%q): err %v, want %v", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.args, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// accept returns a channel yielding the next connection on port.
func accept(t *testing.T, tr *transport.Unix, port uint32) <-chan net.Conn {
	t.Helper()
	l, err := tr.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ch)
				return
			}
			t.Cleanup(func() { c.Close() })
			ch <- c
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("listener closed")
		}
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no connection")
	}
	return nil
}

func TestExecConnectsStreams(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "h")
	tr := transport.NewUnix(prefix)
	inOut := accept(t, tr, 7) // stdin and stdout share port 7
	errs := accept(t, tr, 109)
	cmd := self(t, "-transport", "unix:"+prefix, "-i", "7", "-o", "7", "-e", "109",
		"sh", "-c", `read line; echo "got $line"; echo "to stderr" >&2; exit 3`)
	var diag strings.Builder
	cmd.Stdout, cmd.Stderr = &diag, &diag
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := next(t, inOut)
	e := next(t, errs)
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "got hello\n" {
		t.Fatalf("stdout line %q, %v (vsockexec said %q)", line, err, diag.String())
	}
	errText, err := io.ReadAll(e)
	if err != nil || string(errText) != "to stderr\n" {
		t.Fatalf("stderr %q, %v", errText, err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want status 3 from the exec'd program", err)
	}
	if diag.Len() != 0 {
		t.Errorf("unexpected output on vsockexec's own streams: %q", diag.String())
	}
}

func TestExecFailsWithoutHost(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "h")
	cmd := self(t, "-transport", "unix:"+prefix, "-e", "109", "true")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v (%s), want status 1 when the port cannot be reached", err, out)
	}
	if !strings.Contains(string(out), "port 109") {
		t.Errorf("message %q does not name the port", out)
	}
	if n, bad, _ := logging.Check(bytes.NewReader(out)); n != 1 || len(bad) != 0 {
		t.Errorf("want one JSON log entry, got %d lines, bad %q", n, bad)
	}
}

func TestRelayReconnects(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "h")
	tr := transport.NewUnix(prefix)
	conns := accept(t, tr, 109)
	flag := filepath.Join(dir, "go-on")
	cmd := self(t, "-transport", "unix:"+prefix, "-r", "-e", "109", "sh", "-c",
		fmt.Sprintf(`echo one >&2; while [ ! -e %s ]; do sleep 0.01; done; echo two >&2; echo three >&2; kill -TERM $$`, flag))
	var diag strings.Builder
	cmd.Stdout, cmd.Stderr = &diag, &diag
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	first := next(t, conns)
	line, err := bufio.NewReader(first).ReadString('\n')
	if err != nil || line != "one\n" {
		t.Fatalf("first connection got %q, %v", line, err)
	}
	// Break the connection, then let the program write again: the relay
	// must notice, reconnect and deliver the rest.
	first.Close()
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	second := next(t, conns)
	rest, err := io.ReadAll(second)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "two\nthree\n" {
		t.Errorf("second connection got %q, want the lines written after the break (vsockexec: %q)", rest, diag.String())
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+15 {
		t.Fatalf("exit %v, want 143 (program killed by SIGTERM)", err)
	}
}
