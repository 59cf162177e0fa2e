package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
)

// DefaultHistorySize is how many exits a Reaper remembers when
// Options.HistorySize is zero.
const DefaultHistorySize = 4096

// Exit is the reaped status of one process.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
	seq    uint64
}

// Code is the exit code the GCS reports: the exit status, or 128+signal if
// the process was killed by a signal.
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

func (e Exit) String() string {
	if e.Status.Signaled() {
		return fmt.Sprintf("pid %d killed by signal %d (%s)", e.Pid, int(e.Status.Signal()), e.Status.Signal())
	}
	return fmt.Sprintf("pid %d exited with status %d", e.Pid, e.Status.ExitStatus())
}

// Mark is a position in the sequence of exits a Reaper has reaped. Take one
// with Reaper.Mark before starting whatever will create a process whose pid
// is learned only later, and pass it to Reaper.Watch: exits of that pid reaped
// before the mark belong to an earlier process and are ignored.
type Mark uint64

// Options configure New.
type Options struct {
	// HistorySize bounds the number of remembered exits (DefaultHistorySize
	// if zero).
	HistorySize int
	// Logger receives structured logs; nil discards them.
	Logger *logrus.Entry
}

// Reaper reaps every child of the process and dispatches exits by pid. Create
// exactly one per process with New.
type Reaper struct {
	log         *logrus.Entry
	historySize int

	mu      sync.Mutex
	seq     uint64
	subs    map[int][]*Proc
	history map[int]Exit
	order   []Exit // FIFO of history entries, oldest first
	closed  bool

	sigc chan os.Signal
	stop chan struct{}
	done chan struct{}
}

// New marks the calling process as a child subreaper
// (PR_SET_CHILD_SUBREAPER) and starts reaping its children.
func New(opts Options) (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("reaper: set child subreaper: %w", err)
	}
	r := &Reaper{
		log:         opts.Logger,
		historySize: opts.HistorySize,
		subs:        make(map[int][]*Proc),
		history:     make(map[int]Exit),
		sigc:        make(chan os.Signal, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	if r.log == nil {
		r.log = logging.Discard()
	}
	if r.historySize <= 0 {
		r.historySize = DefaultHistorySize
	}
	signal.Notify(r.sigc, unix.SIGCHLD)
	go r.loop()
	return r, nil
}

// Close stops reaping. Waiters that have not been answered stay pending.
func (r *Reaper) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	signal.Stop(r.sigc)
	close(r.stop)
	<-r.done
	return nil
}

func (r *Reaper) loop() {
	defer close(r.done)
	// Children that exited before signal.Notify took effect sent their
	// SIGCHLD to nobody; collect them once at start.
	r.reapAll()
	for {
		select {
		case <-r.sigc:
			r.reapAll()
		case <-r.stop:
			return
		}
	}
}

// reapAll collects every exited child; SIGCHLDs coalesce, so one signal may
// stand for many exits.
//
// Each wait4 and the dispatch of its exit happen under r.mu: while a caller
// holds r.mu, a child that has not been dispatched is still a zombie or
// alive, so its pid cannot have been given to another process. Start and
// Watch rely on that to open a pidfd on the right process.
func (r *Reaper) reapAll() {
	for {
		r.mu.Lock()
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			r.mu.Unlock()
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD: no children at all; 0: none has exited yet.
			r.mu.Unlock()
			return
		}
		if ws.Exited() || ws.Signaled() {
			r.dispatch(pid, ws)
		}
		r.mu.Unlock()
	}
}

// dispatch records and delivers one exit; r.mu is held.
func (r *Reaper) dispatch(pid int, ws unix.WaitStatus) {
	r.seq++
	e := Exit{Pid: pid, Status: ws, seq: r.seq}
	r.remember(e)
	subs := r.subs[pid]
	delete(r.subs, pid)
	for _, p := range subs {
		p.deliver(e)
	}
	r.log.WithFields(logrus.Fields{
		"pid":         pid,
		"exitCode":    e.Code(),
		"subscribers": len(subs),
	}).Debug("reaper: child reaped")
}

// remember adds e to the bounded history; r.mu is held.
func (r *Reaper) remember(e Exit) {
	r.history[e.Pid] = e
	r.order = append(r.order, e)
	for len(r.order) > r.historySize {
		old := r.order[0]
		r.order[0] = Exit{}
		r.order = r.order[1:]
		if cur, ok := r.history[old.Pid]; ok && cur.seq == old.seq {
			delete(r.history, old.Pid)
		}
	}
}

// Mark returns the current position in the exit sequence (see Mark).
func (r *Reaper) Mark() Mark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Mark(r.seq)
}

// Watch returns a Proc for pid, a process the caller did not start itself but
// that is (or was) a child of this process, for example a container init
// reparented after `runc create` exited. If pid was reaped after since, the
// Proc is already done; otherwise it completes when pid is reaped. Take since
// with Mark before the process could have been created.
//
// Signals to the returned Proc go through a pidfd opened here, while the
// process cannot have been reaped unseen (see reapAll), so they never reach
// another process that reuses pid later.
func (r *Reaper) Watch(pid int, since Mark) *Proc {
	p := newProc(pid, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.history[pid]; ok && e.seq > uint64(since) {
		p.deliver(e)
		return p
	}
	p.openPidfd()
	r.subs[pid] = append(r.subs[pid], p)
	return p
}

// Start starts cmd and subscribes to its exit in one step, so the exit cannot
// be reaped unseen. cmd must not come from exec.CommandContext and its
// Stdin/Stdout/Stderr must be nil or *os.File (see ErrUnsupportedCmd); use
// Run for anything else. Never call cmd.Wait: wait with Proc.Wait.
func (r *Reaper) Start(cmd *exec.Cmd) (*Proc, error) {
	if err := checkCmd(cmd); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	// dispatch needs r.mu, so an exit reaped before the subscription below is
	// delivered only after it exists.
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("reaper: start %s: %w", cmd.Path, err)
	}
	p := newProc(cmd.Process.Pid, cmd.Process)
	p.openPidfd()
	r.subs[p.pid] = append(r.subs[p.pid], p)
	return p, nil
}

func checkCmd(cmd *exec.Cmd) error {
	if cmd.Cancel != nil {
		return fmt.Errorf("%w: created by exec.CommandContext", ErrUnsupportedCmd)
	}
	for name, v := range map[string]any{"stdin": cmd.Stdin, "stdout": cmd.Stdout, "stderr": cmd.Stderr} {
		switch f := v.(type) {
		case nil:
		case *os.File:
			if f == nil {
				return fmt.Errorf("%w: %s is a nil *os.File", ErrUnsupportedCmd, name)
			}
		default:
			return fmt.Errorf("%w: %s is a %T, not an *os.File", ErrUnsupportedCmd, name, v)
		}
	}
	return nil
}

// Proc is a child process whose exit the Reaper delivers.
type Proc struct {
	pid  int
	done chan struct{}
	once sync.Once
	exit Exit
	proc *os.Process // set when the Reaper started it; released on exit

	// mu guards pidfd: Signal uses it under mu, deliver closes it under mu,
	// so a signal never goes through a closed (and maybe reused) descriptor.
	mu sync.Mutex
	// pidfd refers to the process itself, not to its pid; -1 when the
	// process has been reaped, or when pidfd_open is not available
	// (pidfdErr says which).
	pidfd    int
	pidfdErr error
}

func newProc(pid int, proc *os.Process) *Proc {
	return &Proc{pid: pid, done: make(chan struct{}), proc: proc, pidfd: -1}
}

// openPidfd takes a pidfd on p.pid. The Reaper's lock is held and the pid
// has not been reaped yet, so it names this process (alive or a zombie).
func (p *Proc) openPidfd() {
	fd, err := unix.PidfdOpen(p.pid, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.pidfdErr = err
		return
	}
	p.pidfd = fd
}

func (p *Proc) deliver(e Exit) {
	p.once.Do(func() {
		p.exit = e
		if p.proc != nil {
			// The status is already collected; this only frees the pidfd.
			_ = p.proc.Release()
		}
		p.mu.Lock()
		if p.pidfd >= 0 {
			_ = unix.Close(p.pidfd)
			p.pidfd = -1
		}
		p.mu.Unlock()
		close(p.done)
	})
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.pid }

// Done is closed once the process has been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports the exit without blocking; ok is false while it runs.
func (p *Proc) Exited() (e Exit, ok bool) {
	select {
	case <-p.done:
		return p.exit, true
	default:
		return Exit{}, false
	}
}

// Wait blocks until the process has been reaped or ctx is done. Any number of
// callers may wait.
func (p *Proc) Wait(ctx context.Context) (Exit, error) {
	if e, ok := p.Exited(); ok {
		return e, nil
	}
	select {
	case <-p.done:
		return p.exit, nil
	case <-ctx.Done():
		return Exit{}, fmt.Errorf("reaper: wait for pid %d: %w", p.pid, ctx.Err())
	}
}

// Signal sends sig to the process through the pidfd taken when the Reaper
// learned of it, never to its pid: once the process has been reaped the pid
// may belong to someone else, and Signal returns os.ErrProcessDone. Only
// when the kernel has no pidfd_open (before Linux 5.3) does it fall back to
// kill(2) on the pid.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	if p.pidfd >= 0 {
		if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("signal pid %d: %w", p.pid, os.ErrProcessDone)
			}
			return fmt.Errorf("signal pid %d: %w", p.pid, err)
		}
		return nil
	}
	if !errors.Is(p.pidfdErr, unix.ENOSYS) {
		// pidfd_open found no such process: it was never this process's
		// child, or was reaped by someone else.
		return fmt.Errorf("signal pid %d: no pidfd (%v): %w", p.pid, p.pidfdErr, os.ErrProcessDone)
	}
	if err := unix.Kill(p.pid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal pid %d: %w", p.pid, os.ErrProcessDone)
		}
		return fmt.Errorf("signal pid %d: %w", p.pid, err)
	}
	return nil
}
