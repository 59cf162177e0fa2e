package stdio

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// TtyRelay relays a process's stdio through its pty master: host stdin to
// the master, the master to host stdout. A host stderr connection carries
// nothing and is closed at the end. There is no half-close handshake: when
// the process side of the pty is gone (EIO on the master), or the drain
// gives up after the exit, everything is closed.
type TtyRelay struct {
	relayCore          // its mu is also held by Resize
	master    *os.File // non-blocking, pollable
}

var _ Relay = (*TtyRelay)(nil)

// NewTtyRelay takes ownership of master (e.g. the pty master received over
// runc's console socket) and prepares a relay for it. The descriptor is
// duplicated into non-blocking mode so reads can carry deadlines; master
// itself is closed, also on error.
func NewTtyRelay(master *os.File, opts ...Option) (*TtyRelay, error) {
	if master == nil {
		return nil, errors.New("new tty relay: nil pty master")
	}
	defer master.Close()
	m, err := pollableDup(master)
	if err != nil {
		return nil, fmt.Errorf("new tty relay: %w", err)
	}
	return &TtyRelay{relayCore: newRelayCore(opts), master: m}, nil
}

// pollableDup duplicates f's descriptor, makes the duplicate non-blocking
// and wraps it so Go's poller manages it.
func pollableDup(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw %s: %w", f.Name(), err)
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("raw %s: %w", f.Name(), err)
	}
	if derr != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("set non-blocking %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// Start takes ownership of conns (which may be nil) and begins relaying.
func (r *TtyRelay) Start(conns *ConnectionSet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.startable("tty"); err != nil {
		return err
	}
	if conns == nil {
		conns = &ConnectionSet{}
	}
	r.started = true
	r.conns = conns
	if conns.In != nil {
		r.inWG.Add(1)
		go r.relayStdin(conns.In)
	}
	if conns.Out != nil {
		p := &outPump{name: "stdout", src: r.master, dst: conns.Out, tty: true, idle: r.o.idle, ph: r.ph,
			log: r.o.log.WithField("stream", "stdout")}
		r.armReconnect(p, conns)
		p.tee = conns.tee
		r.outWG.Add(1)
		go r.relayOut(p)
	}
	if r.ph.isExited() {
		r.ph.exit(r.o.idle, r.master)
	}
	return nil
}

func (r *TtyRelay) relayStdin(conn net.Conn) {
	defer r.inWG.Done()
	n, err := copyIn(r.master, conn)
	r.errs.stdinEnded(r.o.log, n, err, r.stdinStopping.Load(), unix.EIO)
}

func (r *TtyRelay) relayOut(p *outPump) {
	defer r.outWG.Done()
	n, err := p.run()
	log := p.log.WithField("bytes", n)
	r.errs.outEnded(log, err, "pty")
	_ = closeWrite(p.dst)
	_ = p.dst.Close()
	log.Debug("pty output relay done")
}

// ProcessExited starts the bounded drain. Idempotent.
func (r *TtyRelay) ProcessExited() {
	r.ph.exit(r.o.idle, r.master)
}

// Wait implies ProcessExited, waits for the pty output to end, stops stdin
// and releases the pty and every connection. Call it after the process
// exited and before reporting the exit code.
func (r *TtyRelay) Wait() error {
	return r.wait(r.ProcessExited, r.stopStdin, r.release)
}

func (r *TtyRelay) stopStdin() {
	r.stopStdinConn()
	_ = r.master.SetWriteDeadline(time.Unix(1, 0))
}

// Close aborts the relay and releases everything. It always returns nil.
func (r *TtyRelay) Close() error {
	r.mu.Lock()
	conns := r.conns
	r.mu.Unlock()
	r.ph.abort(r.master)
	if conns != nil && conns.Out != nil {
		_ = closeWrite(conns.Out)
	}
	_ = r.Wait()
	return nil
}

// Resize applies TIOCSWINSZ to the master (rows = height, columns =
// width). Once the relay has been released it succeeds without effect.
func (r *TtyRelay) Resize(height, width uint16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released {
		return nil
	}
	return setWinsize(r.master, height, width)
}

func setWinsize(f *os.File, height, width uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("resize console: %w", err)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	}); err != nil {
		return fmt.Errorf("resize console: %w", err)
	}
	if ierr != nil {
		return fmt.Errorf("resize console: TIOCSWINSZ: %w", ierr)
	}
	return nil
}

func (r *TtyRelay) release() {
	r.releaseOnce.Do(func() {
		r.mu.Lock()
		r.released = true
		conns := r.conns
		_ = r.master.Close()
		r.mu.Unlock()
		_ = conns.Close()
	})
}
