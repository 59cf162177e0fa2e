package stdio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// Relay is what a process owner holds for the process's stdio, whether it
// runs on pipes (PipeRelay) or on a pty (TtyRelay).
//
// The owner's sequence is: Start(conns) once the host's connections are
// dialled; after reaping the process, Wait (which implies ProcessExited);
// only then publish the exit code. Close aborts everything at any time
// (failed start, container deletion).
type Relay interface {
	// Start takes ownership of conns and begins relaying. On error the
	// caller keeps conns.
	Start(conns *ConnectionSet) error
	// ProcessExited starts the bounded drain: from now on an output stream
	// that stays silent for the idle period is abandoned. Idempotent.
	ProcessExited()
	// Wait returns once the output has been relayed (or abandoned by the
	// drain) and every pipe, pty and connection of the relay is closed. The
	// error is informational (errors.Is ErrDrainIdle, ErrUnexpectedData,
	// I/O errors); the relay is finished either way.
	Wait() error
	// Close aborts the relay, dropping undelivered data, and releases
	// everything. Safe to call at any time and more than once.
	Close() error
	// Resize sets the console window size: rows = height, columns = width.
	Resize(height, width uint16) error
}

// relayCore is what both relays keep: options, the phase (running,
// exited, aborted), the start/release guard and connections (under mu), and
// the bookkeeping of their goroutines.
type relayCore struct {
	o  options
	ph *phase

	mu       sync.Mutex
	started  bool
	released bool
	conns    *ConnectionSet

	outWG, inWG   sync.WaitGroup
	stdinStopping atomic.Bool
	errs          errList

	waitOnce    sync.Once
	waitErr     error
	releaseOnce sync.Once
}

func newRelayCore(opts []Option) relayCore {
	return relayCore{o: newOptions(opts), ph: newPhase()}
}

// startable says, with mu held, why the relay cannot start now.
func (c *relayCore) startable(kind string) error {
	switch {
	case c.ph.isAborted() || c.released:
		return fmt.Errorf("start %s relay: %w", kind, ErrRelayClosed)
	case c.started:
		return fmt.Errorf("start %s relay: %w", kind, ErrAlreadyStarted)
	}
	return nil
}

// wait ends a relay once: the drain starts (exited), the output is waited
// for, stdin is stopped and waited for, everything is released, and the
// goroutines' errors are reported. Concurrent and repeated calls return the
// same result.
func (c *relayCore) wait(exited, stopStdin, release func()) error {
	c.waitOnce.Do(func() {
		exited()
		c.outWG.Wait()
		stopStdin()
		c.inWG.Wait()
		release()
		c.waitErr = c.errs.join()
	})
	return c.waitErr
}

// stopStdinConn interrupts a stdin copy blocked reading the host: the host
// may keep stdin open until it hears about the exit, which follows Wait.
func (c *relayCore) stopStdinConn() {
	c.mu.Lock()
	conns := c.conns
	c.mu.Unlock()
	c.stdinStopping.Store(true)
	if conns != nil && conns.In != nil {
		stopReading(conns.In)
	}
}

// armReconnect gives p what it needs to re-dial its stream when conns asks
// for it (ConnectionSet.EnableReconnect); the relay's record of the
// connection follows the swap so that Close still reaches it.
func (c *relayCore) armReconnect(p *outPump, conns *ConnectionSet) {
	if conns.redial == nil {
		return
	}
	name := p.name
	p.redial = func(ctx context.Context) (net.Conn, error) { return conns.redial(ctx, name) }
	p.ring = newReplayRing()
	p.swapped = func(old, nc net.Conn) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch old {
		case c.conns.Out:
			c.conns.Out = nc
		case c.conns.Err:
			c.conns.Err = nc
		}
	}
}

// errList collects the errors of a relay's goroutines.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errList) add(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errList) join() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}

// stdinEnded logs and records how a stdin copy ended. benign is the error
// that only means the process side went away (EPIPE on a pipe, EIO on a
// pty); errors after stopping are expected too.
func (l *errList) stdinEnded(log *logrus.Entry, n int64, err error, stopping bool, benign error) {
	log = log.WithFields(logrus.Fields{"stream": "stdin", "bytes": n})
	if err != nil && !stopping && !errors.Is(err, benign) {
		log.WithError(err).Warn("stdin relay failed")
		l.add(fmt.Errorf("stdin: %w", err))
		return
	}
	log.Debug("stdin relay done")
}

// outEnded logs and records how an output pump ended; what names the
// source in the messages ("output" or "pty").
func (l *errList) outEnded(log *logrus.Entry, err error, what string) {
	switch {
	case err == nil, errors.Is(err, ErrRelayClosed):
	case errors.Is(err, ErrDrainIdle):
		log.WithError(err).Info("abandoned " + what + " held open after process exit")
		l.add(err)
	default:
		log.WithError(err).Warn(what + " relay failed")
		l.add(err)
	}
}
