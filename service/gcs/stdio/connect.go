package stdio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// Streams says which of a process's standard streams the host wants.
type Streams struct {
	Stdin, Stdout, Stderr bool
}

// AllStreams requests stdin, stdout and stderr (a container init's pipes
// are created before the host says which streams it wants).
func AllStreams() Streams { return Streams{Stdin: true, Stdout: true, Stderr: true} }

// StreamsOf returns the streams requested by a process's CreateStd*Pipe
// flags.
func StreamsOf(p *prot.ProcessParameters) Streams {
	if p == nil {
		return Streams{}
	}
	return Streams{Stdin: p.CreateStdInPipe, Stdout: p.CreateStdOutPipe, Stderr: p.CreateStdErrPipe}
}

// ConnectionSet holds the connections to the host for one process's stdio.
// A nil field is a stream the host did not ask for.
type ConnectionSet struct {
	In, Out, Err net.Conn

	// redial re-dials an output stream ("stdout", "stderr"); set by
	// EnableReconnect.
	redial func(ctx context.Context, stream string) (net.Conn, error)
	// tee also receives every byte written to Out and Err; set by Tee.
	tee io.Writer
}

// Tee makes the relay that takes these connections also write everything
// it sends on the output streams to w, after the host connection took it
// (a container init's tee log). w must be safe for concurrent writes
// (stdout and stderr share it); an *os.File opened with O_APPEND is. A
// failed write to w is logged once and the tee dropped; the host's
// streams go on.
func (s *ConnectionSet) Tee(w io.Writer) { s.tee = w }

// Streams reports which connections are present.
func (s *ConnectionSet) Streams() Streams {
	if s == nil {
		return Streams{}
	}
	return Streams{Stdin: s.In != nil, Stdout: s.Out != nil, Stderr: s.Err != nil}
}

// Close closes every connection and forgets it.
func (s *ConnectionSet) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, c := range []struct {
		name string
		conn *net.Conn
	}{{"stdin", &s.In}, {"stdout", &s.Out}, {"stderr", &s.Err}} {
		if *c.conn == nil {
			continue
		}
		if err := (*c.conn).Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s connection: %w", c.name, err))
		}
		*c.conn = nil
	}
	return errors.Join(errs...)
}

// Connect dials the host for each stream of want, in the order stdin,
// stdout, stderr, and returns the connections.
//
// Rule: a stream is connected exactly when want asks for it (the process's
// CreateStd*Pipe flag). A wanted stream whose port is 0 is a malformed
// request (hosts allocate ports from 0x40000001 and send 0 only for streams
// they did not ask for) and fails with ErrMissingPort (E_INVALIDARG); a
// port given for an unwanted stream is ignored. On any failure every
// connection already opened is closed.
func Connect(ctx context.Context, log *logrus.Entry, tr transport.Transport, ports prot.ExecuteProcessVsockStdioRelaySettings, want Streams) (_ *ConnectionSet, err error) {
	set := &ConnectionSet{}
	defer func() {
		if err != nil {
			_ = set.Close()
		}
	}()
	for _, s := range []struct {
		name   string
		wanted bool
		port   uint32
		conn   *net.Conn
	}{
		{"stdin", want.Stdin, ports.StdIn, &set.In},
		{"stdout", want.Stdout, ports.StdOut, &set.Out},
		{"stderr", want.Stderr, ports.StdErr, &set.Err},
	} {
		if !s.wanted {
			continue
		}
		if s.port == 0 {
			return nil, prot.NewError(prot.HrErrInvalidArg, fmt.Errorf("connect %s: %w", s.name, ErrMissingPort))
		}
		c, err := tr.Dial(ctx, s.port)
		if err != nil {
			return nil, fmt.Errorf("connect %s to port %d: %w", s.name, s.port, err)
		}
		*s.conn = c
		log.WithFields(logrus.Fields{"stream": s.name, "port": s.port, "transport": tr.String()}).Debug("stdio connected")
	}
	return set, nil
}

// FileSet is a process's stdio as files; a nil field is a stream that is
// not provided.
type FileSet struct {
	In, Out, Err *os.File
}

// Close closes every file and forgets it.
func (fs *FileSet) Close() error {
	if fs == nil {
		return nil
	}
	var errs []error
	for _, f := range []**os.File{&fs.In, &fs.Out, &fs.Err} {
		if *f == nil {
			continue
		}
		if err := (*f).Close(); err != nil {
			errs = append(errs, err)
		}
		*f = nil
	}
	return errors.Join(errs...)
}

// Files duplicates each connection's socket so a child process can use the
// sockets as its own stdio (no relay). The duplicates are in blocking mode
// and close-on-exec (exec.Cmd passes them on explicitly). Blocking mode is
// a property shared with the original socket, so after Files the set should
// only be closed, not read or written. The caller closes the returned files
// once the child has them.
func (s *ConnectionSet) Files() (_ *FileSet, err error) {
	fs := &FileSet{}
	defer func() {
		if err != nil {
			_ = fs.Close()
		}
	}()
	if s == nil {
		return fs, nil
	}
	for _, c := range []struct {
		name string
		conn net.Conn
		file **os.File
	}{{"stdin", s.In, &fs.In}, {"stdout", s.Out, &fs.Out}, {"stderr", s.Err, &fs.Err}} {
		if c.conn == nil {
			continue
		}
		f, err := dupBlocking(c.conn, c.name)
		if err != nil {
			return nil, fmt.Errorf("dup %s socket: %w", c.name, err)
		}
		*c.file = f
	}
	return fs, nil
}

// connFd runs fn with the connection's descriptor.
func connFd(c net.Conn, fn func(fd int) error) error {
	switch v := c.(type) {
	case syscall.Conn:
		rc, err := v.SyscallConn()
		if err != nil {
			return err
		}
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
			return err
		}
		return ferr
	case interface{ File() (*os.File, error) }:
		f, err := v.File()
		if err != nil {
			return err
		}
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
			return err
		}
		return ferr
	default:
		return errNoFd
	}
}

func dupBlocking(c net.Conn, name string) (*os.File, error) {
	nfd := -1
	err := connFd(c, func(fd int) error {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("fcntl F_DUPFD_CLOEXEC: %w", err)
		}
		nfd = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(nfd, false); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("set blocking: %w", err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}
