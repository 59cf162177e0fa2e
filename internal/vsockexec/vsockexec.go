package vsockexec

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/service/gcs/transport"
)

// Options is a parsed vsockexec command line.
type Options struct {
	Relay     bool   // -r
	Stdin     uint32 // -i: port for stdin, 0 = inherit
	Stdout    uint32 // -o: port for stdout, 0 = inherit
	Stderr    uint32 // -e: port for stderr, 0 = inherit
	Transport string // -transport: "vsock" (default) or "unix:<prefix>"
	Argv      []string
}

// Parse parses arguments (without the program name). Options end at the
// first non-option argument, which starts the program's command line.
func Parse(args []string) (Options, error) {
	var o Options
	var in, out, errp uint
	fs := flag.NewFlagSet("vsockexec", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.Relay, "r", false, "relay output through a pipe, reconnecting when the connection breaks")
	fs.UintVar(&in, "i", 0, "host port for stdin")
	fs.UintVar(&out, "o", 0, "host port for stdout")
	fs.UintVar(&errp, "e", 0, "host port for stderr")
	fs.StringVar(&o.Transport, "transport", "vsock", "vsock or unix:<prefix>")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	for _, p := range []uint{in, out, errp} {
		if p > 0xFFFFFFFF {
			return o, fmt.Errorf("%w: port %d out of range", ErrUsage, p)
		}
	}
	o.Stdin, o.Stdout, o.Stderr = uint32(in), uint32(out), uint32(errp)
	o.Argv = fs.Args()
	if len(o.Argv) == 0 {
		return o, fmt.Errorf("%w: no program", ErrUsage)
	}
	if o.Relay && o.Stdout == 0 && o.Stderr == 0 {
		return o, ErrNoRelayPort
	}
	return o, nil
}

// filer is implemented by connections that can hand out a descriptor.
type filer interface {
	File() (*os.File, error)
}

// Exec connects the requested streams and replaces the process with the
// program. It returns only on failure.
func Exec(ctx context.Context, tr transport.Transport, o Options) error {
	path, err := exec.LookPath(o.Argv[0])
	if err != nil {
		return fmt.Errorf("find %s: %w", o.Argv[0], err)
	}
	files := map[uint32]*os.File{}
	ports := [3]uint32{o.Stdin, o.Stdout, o.Stderr}
	for fd, port := range ports {
		if port == 0 {
			continue
		}
		f, ok := files[port]
		if !ok {
			c, err := tr.Dial(ctx, port)
			if err != nil {
				return fmt.Errorf("connect stream %d to port %d: %w", fd, port, err)
			}
			fl, ok := c.(filer)
			if !ok {
				c.Close()
				return fmt.Errorf("%w: %T", ErrNoFile, c)
			}
			// File returns a blocking duplicate; the net.Conn is dropped.
			if f, err = fl.File(); err != nil {
				c.Close()
				return fmt.Errorf("descriptor of port %d: %w", port, err)
			}
			c.Close()
			files[port] = f
		}
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup onto fd %d: %w", fd, err)
		}
	}
	for _, f := range files {
		f.Close()
	}
	if err := syscall.Exec(path, o.Argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// RelayPort is the single port relay mode writes to: -e, else -o.
func (o Options) RelayPort() uint32 {
	if o.Stderr != 0 {
		return o.Stderr
	}
	return o.Stdout
}

// Relay runs the program with its stdout and/or stderr (those with a port)
// on a pipe and copies the pipe to the host port, reconnecting every
// retry interval for as long as the connection is down. It returns the
// program's exit status (128+signal when killed).
func Relay(ctx context.Context, tr transport.Transport, o Options, retry time.Duration, log *logrus.Entry) (int, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 1, fmt.Errorf("pipe: %w", err)
	}
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if o.Stdout != 0 {
		cmd.Stdout = pw
	}
	if o.Stderr != 0 {
		cmd.Stderr = pw
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return 1, fmt.Errorf("start %s: %w", o.Argv[0], err)
	}
	pw.Close()
	copyErr := relayCopy(ctx, tr, o.RelayPort(), pr, retry, log)
	pr.Close()
	werr := cmd.Wait()
	status := exitStatus(cmd.ProcessState)
	if copyErr != nil {
		return status, copyErr
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return status, fmt.Errorf("wait %s: %w", o.Argv[0], werr)
	}
	return status, nil
}

func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// relayCopy copies r to the port until r ends, reconnecting on write
// errors and resending what the failed write did not take.
func relayCopy(ctx context.Context, tr transport.Transport, port uint32, r io.Reader, retry time.Duration, log *logrus.Entry) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	dial := func() error {
		for {
			c, err := tr.Dial(ctx, port)
			if err == nil {
				conn = c
				return nil
			}
			log.WithError(err).WithField("port", port).Debug("relay connect failed; retrying")
			select {
			case <-ctx.Done():
				return fmt.Errorf("relay to port %d: %w", port, ctx.Err())
			case <-time.After(retry):
			}
		}
	}
	if err := dial(); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		pending := buf[:n]
		for len(pending) > 0 {
			w, err := conn.Write(pending)
			pending = pending[w:]
			if err == nil {
				continue
			}
			log.WithError(err).WithField("port", port).Info("relay connection lost; reconnecting")
			conn.Close()
			conn = nil
			if err := dial(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read program output: %w", rerr)
		}
	}
}
