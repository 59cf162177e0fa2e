package stdio

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// PipeRelay relays a non-tty process's stdio through pipes.
//
// The relay ends of the pipes are non-blocking and owned by the GCS; the
// child ends (ChildFiles) are ordinary blocking descriptors to be inherited
// by the process (runc's child or an external process).
type PipeRelay struct {
	relayCore

	// Relay ends (nil for streams without a pipe).
	stdinW, stdoutR, stderrR *os.File
	child                    FileSet
	childOnce                sync.Once
}

var _ Relay = (*PipeRelay)(nil)

// NewPipeRelay creates a pipe for every stream in want. A container init
// is created before the host names its streams: pass AllStreams() and let
// Start close the pipes the host did not ask for.
func NewPipeRelay(want Streams, opts ...Option) (_ *PipeRelay, err error) {
	r := &PipeRelay{relayCore: newRelayCore(opts)}
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	if want.Stdin {
		if r.child.In, r.stdinW, err = newPipe(true, 0); err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
	}
	if want.Stdout {
		if r.stdoutR, r.child.Out, err = newPipe(false, r.o.pipeSize); err != nil {
			return nil, fmt.Errorf("stdout pipe: %w", err)
		}
	}
	if want.Stderr {
		if r.stderrR, r.child.Err, err = newPipe(false, r.o.pipeSize); err != nil {
			return nil, fmt.Errorf("stderr pipe: %w", err)
		}
	}
	return r, nil
}

// newPipe returns a pipe as (read end, write end). The end the GCS keeps
// (the write end when childReads, else the read end) is non-blocking and
// registered with Go's poller; the child's end stays blocking. size > 0
// asks the kernel for that pipe capacity (best effort).
func newPipe(childReads bool, size int) (rd, wr *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe2: %w", err)
	}
	relayFd := p[0]
	if childReads {
		relayFd = p[1]
	}
	if err := unix.SetNonblock(relayFd, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("set non-blocking: %w", err)
	}
	if size > 0 {
		// Failure (e.g. above pipe-max-size) only costs throughput.
		_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, size)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// ChildFiles returns the process's ends of the pipes (nil for streams
// without a pipe). They stay owned by the relay: hand them to the child,
// then call CloseChildEnds.
func (r *PipeRelay) ChildFiles() FileSet { return r.child }

// CloseChildEnds closes the GCS's copies of the child ends once the child
// has inherited them, so that the process's exit (and that of anything it
// shared them with) produces EOF. Idempotent; ProcessExited, Wait and
// Close call it too.
func (r *PipeRelay) CloseChildEnds() error {
	var err error
	r.childOnce.Do(func() { err = r.child.Close() })
	if err != nil {
		return fmt.Errorf("close child stdio: %w", err)
	}
	return nil
}

// Start takes ownership of conns (which may be nil) and begins relaying.
// Pipes whose stream has no connection get their relay end closed: the
// process reads EOF on such a stdin and gets EPIPE writing such an output.
// A connection for a stream that has no pipe is an error (ErrNoPipe).
func (r *PipeRelay) Start(conns *ConnectionSet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.startable("pipe"); err != nil {
		return err
	}
	if conns == nil {
		conns = &ConnectionSet{}
	}
	for _, c := range []struct {
		name string
		conn net.Conn
		pipe *os.File
	}{{"stdin", conns.In, r.stdinW}, {"stdout", conns.Out, r.stdoutR}, {"stderr", conns.Err, r.stderrR}} {
		if c.conn != nil && c.pipe == nil {
			return fmt.Errorf("start pipe relay: %s: %w", c.name, ErrNoPipe)
		}
	}
	r.started = true
	r.conns = conns

	if conns.In != nil {
		r.inWG.Add(1)
		go r.relayStdin(conns.In)
	} else if r.stdinW != nil {
		_ = r.stdinW.Close()
	}
	for _, s := range []struct {
		name string
		conn net.Conn
		src  *os.File
	}{{"stdout", conns.Out, r.stdoutR}, {"stderr", conns.Err, r.stderrR}} {
		if s.conn == nil {
			if s.src != nil {
				_ = s.src.Close()
			}
			continue
		}
		p := &outPump{name: s.name, src: s.src, dst: s.conn, idle: r.o.idle, ph: r.ph,
			log: r.o.log.WithField("stream", s.name)}
		r.armReconnect(p, conns)
		p.tee = conns.tee
		r.outWG.Add(1)
		go r.relayOut(p)
	}
	// If the process already exited (ProcessExited before Start), arm the
	// drain on the freshly started pumps.
	if r.ph.isExited() {
		r.ph.exit(r.o.idle, r.stdoutR, r.stderrR)
	}
	return nil
}

func (r *PipeRelay) relayStdin(conn net.Conn) {
	defer r.inWG.Done()
	n, err := copyIn(r.stdinW, conn)
	// Host half-closed stdin (or the relay is ending): the process reads
	// EOF once every other holder of the pipe closed it too.
	_ = r.stdinW.Close()
	r.errs.stdinEnded(r.o.log, n, err, r.stdinStopping.Load(), unix.EPIPE)
}

func (r *PipeRelay) relayOut(p *outPump) {
	defer r.outWG.Done()
	n, err := p.run()
	// Writers that are still around (a background child) get EPIPE from now.
	_ = p.src.Close()
	log := p.log.WithField("bytes", n)
	r.errs.outEnded(log, err, "output")
	if herr := closeWrite(p.dst); herr != nil && !r.ph.isAborted() {
		log.WithError(herr).Debug("half-close failed")
	}
	if !r.ph.isAborted() {
		if herr := awaitHostClose(p.dst, r.o.hostClose); herr != nil {
			log.WithError(herr).Warn("output stream not closed cleanly by host")
			r.errs.add(fmt.Errorf("%s: %w", p.name, herr))
		}
	}
	_ = p.dst.Close()
	log.Debug("output relay done")
}

// ProcessExited starts the bounded drain. Idempotent.
func (r *PipeRelay) ProcessExited() {
	_ = r.CloseChildEnds()
	r.ph.exit(r.o.idle, r.stdoutR, r.stderrR)
}

// stopStdin interrupts the stdin relay: the host may keep stdin open until
// it hears about the exit, which it only does after Wait.
func (r *PipeRelay) stopStdin() {
	r.stopStdinConn()
	if r.stdinW != nil {
		_ = r.stdinW.SetWriteDeadline(time.Unix(1, 0))
	}
}

// Wait implies ProcessExited, waits for the output streams to be relayed
// and closed, stops stdin, and releases everything. Call it after the
// process exited and before reporting the exit code. Concurrent and repeated
// calls return the same result.
func (r *PipeRelay) Wait() error {
	return r.wait(r.ProcessExited, r.stopStdin, r.release)
}

// Close aborts the relay (pending output is dropped) and releases
// everything. It always returns nil; it exists to satisfy io.Closer.
func (r *PipeRelay) Close() error {
	r.mu.Lock()
	conns := r.conns
	r.mu.Unlock()
	_ = r.CloseChildEnds()
	r.ph.abort(r.stdoutR, r.stderrR)
	if conns != nil {
		for _, c := range []net.Conn{conns.Out, conns.Err} {
			if c != nil {
				// Wakes a splice or write blocked on a full socket.
				_ = closeWrite(c)
				stopReading(c)
			}
		}
	}
	_ = r.Wait()
	return nil
}

// Resize fails: a pipe-backed process has no console (E_FAIL).
func (r *PipeRelay) Resize(height, width uint16) error {
	return prot.NewError(prot.HrFail, fmt.Errorf("resize console: %w", ErrNoConsole))
}

func (r *PipeRelay) release() {
	r.releaseOnce.Do(func() {
		_ = r.CloseChildEnds()
		for _, f := range []*os.File{r.stdinW, r.stdoutR, r.stderrR} {
			if f != nil {
				_ = f.Close()
			}
		}
		r.mu.Lock()
		r.released = true
		conns := r.conns
		r.mu.Unlock()
		_ = conns.Close()
	})
}
