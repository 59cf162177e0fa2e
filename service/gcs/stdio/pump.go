package stdio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

const (
	// copyBufMin and copyBufMax bound the buffer of the read/write loops: it
	// starts small (most streams are quiet logs) and doubles while reads
	// fill it, up to the pipe size, where a busy stream moves as fast as
	// splice.
	copyBufMin = 64 << 10
	copyBufMax = 1 << 20
	// spliceMax is the most one splice(2) call is asked to move.
	spliceMax = 1 << 20
)

// outPump relays one output source (a pipe read end or a pty master) to one
// host connection until the source reports EOF, the relay is aborted, or -
// once the process has exited - the source stays silent for the idle
// period.
type outPump struct {
	name string
	src  *os.File // pollable: read deadlines work on it
	dst  net.Conn
	tty  bool // source is a pty master: EIO is the end, no splice
	idle time.Duration
	ph   *phase
	log  *logrus.Entry

	// redial, when set, re-dials a broken connection (EnableReconnect);
	// ring keeps the output to replay, swapped tells the relay about the
	// new connection.
	redial  func(context.Context) (net.Conn, error)
	ring    *replayRing
	swapped func(old, c net.Conn)
	// tee, when set, gets a copy of what dst took (ConnectionSet.Tee).
	tee io.Writer
}

// run copies and returns the number of bytes relayed. A clean EOF gives a
// nil error.
func (p *outPump) run() (int64, error) {
	var total int64
	if !p.tty && p.redial == nil && p.tee == nil {
		n, handled, err := p.spliceAll()
		total += n
		if handled {
			return total, err
		}
		p.log.WithField("stream", p.name).Debug("splice unavailable, using copy loop")
	}
	n, err := p.copyAll()
	return total + n, err
}

// progress re-arms the idle deadline after data moved during the drain.
func (p *outPump) progress() error {
	if p.ph.isAborted() {
		return ErrRelayClosed
	}
	if p.ph.isExited() {
		_ = p.src.SetReadDeadline(time.Now().Add(p.idle))
	}
	return nil
}

// onDeadline decides what a read deadline means: abort, end of the drain,
// or (should not happen) a stale deadline to clear.
func (p *outPump) onDeadline() error {
	if p.ph.isAborted() {
		return ErrRelayClosed
	}
	if p.ph.isExited() {
		return fmt.Errorf("%s: %w (idle %s)", p.name, ErrDrainIdle, p.idle)
	}
	_ = p.src.SetReadDeadline(time.Time{})
	return nil
}

// rawWriter returns a RawConn for the connection's socket, and a function
// releasing what was allocated for it. ok is false when the connection has
// no descriptor.
func rawWriter(c net.Conn) (rc syscall.RawConn, release func(), ok bool) {
	switch v := c.(type) {
	case syscall.Conn:
		rc, err := v.SyscallConn()
		if err != nil {
			return nil, nil, false
		}
		return rc, func() {}, true
	case interface{ File() (*os.File, error) }:
		// E.g. the vsock connection: no SyscallConn, but a dup of its
		// (blocking) socket serves as well; splice then blocks in the
		// kernel while the socket is full.
		f, err := v.File()
		if err != nil {
			return nil, nil, false
		}
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return nil, nil, false
		}
		return rc, func() { f.Close() }, true
	default:
		return nil, nil, false
	}
}

// spliceAll moves the pipe into the socket with splice(2). handled is false
// when splice is not possible for this pair and nothing was moved; the
// caller then falls back to copying.
func (p *outPump) spliceAll() (written int64, handled bool, err error) {
	dst, release, ok := rawWriter(p.dst)
	if !ok {
		return 0, false, nil
	}
	defer release()
	src, err := p.src.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	for {
		n, err := spliceOnce(src, dst)
		if n > 0 {
			written += n
			if perr := p.progress(); perr != nil {
				return written, true, perr
			}
			continue
		}
		switch {
		case err == nil:
			return written, true, nil // EOF: every writer closed the pipe
		case written == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)):
			return 0, false, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			if derr := p.onDeadline(); derr != nil {
				return written, true, derr
			}
		default:
			return written, true, fmt.Errorf("splice %s: %w", p.name, err)
		}
	}
}

// spliceOnce performs one successful splice from the pipe behind src to the
// socket behind dst, waiting for the pipe to have data (subject to its read
// deadline) and for the socket to have room. n == 0 with a nil error is
// EOF.
//
// EAGAIN from splice means the pipe is empty or the socket is full. Go's
// poller is edge-triggered and only catches readiness changes that happen
// after the wait was prepared, so the callback checks, while prepared,
// which side is not ready (TIOCINQ on the pipe, a zero-timeout poll on the
// socket) and only then waits on that side; if both look ready (data
// arrived in between) it simply retries.
func spliceOnce(src, dst syscall.RawConn) (int64, error) {
	var (
		n    int64
		serr error
	)
	rerr := src.Read(func(rfd uintptr) bool {
		pipeEmpty := false
		werr := dst.Write(func(wfd uintptr) bool {
			for {
				n, serr = unix.Splice(int(rfd), nil, int(wfd), nil, spliceMax, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
				if serr == unix.EINTR {
					continue
				}
				if serr != unix.EAGAIN {
					return true
				}
				if avail, err := unix.IoctlGetInt(int(rfd), unix.TIOCINQ); err == nil && avail == 0 {
					pipeEmpty = true
					return true
				}
				if !writable(int(wfd)) {
					return false // wait for room in the socket
				}
			}
		})
		if werr != nil {
			serr = werr
			return true
		}
		return !pipeEmpty // empty: wait for data (or EOF) in the pipe
	})
	if rerr != nil {
		return 0, rerr
	}
	if serr != nil {
		return 0, serr
	}
	return n, nil
}

// writable reports whether fd polls writable right now.
func writable(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0
	}
}

// copyAll is the read/write fallback (and the pty path).
func (p *outPump) copyAll() (written int64, err error) {
	buf := make([]byte, copyBufMin)
	for {
		n, rerr := p.src.Read(buf)
		full := n == len(buf)
		if n > 0 {
			if p.ring != nil {
				p.ring.write(buf[:n])
			}
			w, werr := writeAll(p.dst, buf[:n])
			written += int64(w)
			if werr != nil && p.redial != nil && disconnected(werr) {
				// The replay of the new connection includes this chunk.
				werr = p.reconnect(werr)
			}
			if werr != nil {
				if errors.Is(werr, ErrRelayClosed) {
					return written, werr
				}
				return written, fmt.Errorf("write %s: %w", p.name, werr)
			}
			p.teeWrite(buf[:n])
			if perr := p.progress(); perr != nil {
				return written, perr
			}
			if full && len(buf) < copyBufMax {
				buf = make([]byte, 2*len(buf))
			}
		}
		switch {
		case rerr == nil:
		case rerr == io.EOF:
			return written, nil
		case p.tty && errors.Is(rerr, syscall.EIO):
			return written, nil // the pty's other side is gone
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			if derr := p.onDeadline(); derr != nil {
				return written, derr
			}
		default:
			return written, fmt.Errorf("read %s: %w", p.name, rerr)
		}
	}
}

func writeAll(w io.Writer, b []byte) (int, error) {
	total := 0
	for total < len(b) {
		n, err := w.Write(b[total:])
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// copyIn relays host stdin into dst until the host half-closes (EOF) or
// the read is interrupted. It deliberately avoids io.Copy's ReaderFrom /
// WriterTo detours: stdin volume is small and the plain loop keeps the
// interruption rules simple.
func copyIn(dst io.Writer, src net.Conn) (int64, error) {
	buf := make([]byte, 32<<10)
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := writeAll(dst, buf[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// halfCloser and readCloser are the optional shutdown methods of
// connections (net.UnixConn, net.TCPConn, the vsock conn).
type halfCloser interface{ CloseWrite() error }
type readCloser interface{ CloseRead() error }

// stopReading interrupts a blocked Read on c: shutdown(SHUT_RD) where the
// connection supports it (this works on blocking sockets too), plus a
// past read deadline.
func stopReading(c net.Conn) {
	if rc, ok := c.(readCloser); ok {
		_ = rc.CloseRead()
	}
	_ = c.SetReadDeadline(time.Unix(1, 0))
}

// closeWrite half-closes c so the host reads EOF.
func closeWrite(c net.Conn) error {
	if hc, ok := c.(halfCloser); ok {
		return hc.CloseWrite()
	}
	return nil
}

// awaitHostClose waits, for at most timeout, until the host closes its end
// of an output connection after the guest half-closed it. Data from the
// host is discarded and reported.
func awaitHostClose(c net.Conn, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	// Deadlines are not supported by every connection (the vsock conn
	// ignores them); shutdown(SHUT_RD) bounds the wait there.
	var expired atomic.Bool
	t := time.AfterFunc(timeout, func() {
		expired.Store(true)
		stopReading(c)
	})
	defer t.Stop()
	var (
		buf [512]byte
		got int
	)
	for {
		n, err := c.Read(buf[:])
		got += n
		if err != nil {
			switch {
			case got > 0:
				return fmt.Errorf("%w (%d bytes)", ErrUnexpectedData, got)
			case expired.Load() || errors.Is(err, os.ErrDeadlineExceeded):
				return fmt.Errorf("host did not close the connection within %s", timeout)
			case err == io.EOF:
				return nil
			default:
				return fmt.Errorf("wait for host close: %w", err)
			}
		}
	}
}

// teeWrite copies b to the tee, if any; the first failure drops it.
func (p *outPump) teeWrite(b []byte) {
	if p.tee == nil {
		return
	}
	if _, err := p.tee.Write(b); err != nil {
		p.log.WithError(err).Warn("tee log write failed; no longer teeing this stream")
		p.tee = nil
	}
}
