package uvm

import (
	"context"
	"sync"
	"time"

	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/stdio"
)

// process is one process the host can wait on, signal or resize.
type process struct {
	pid uint32
	// relay carries its stdio; nil when the process has none or owns its
	// sockets directly.
	relay stdio.Relay
	// signal delivers a signal to the process.
	signal func(sig int) error
	// args is the command line, which a security policy may match when
	// the process is signalled.
	args []string

	// console is set when the process has a pty (a resize after its exit
	// is then a silent no-op rather than a refusal).
	console bool

	done chan struct{}
	code uint32

	mu       sync.Mutex
	answered bool
	// retained marks the compact record a process table keeps after the
	// first answered wait (processTable.retire).
	retained bool
}

func newProcess(pid uint32, relay stdio.Relay, signal func(int) error) *process {
	_, console := relay.(*stdio.TtyRelay)
	return &process{pid: pid, relay: relay, signal: signal, console: console, done: make(chan struct{})}
}

// finish publishes the exit code. Call it only after the stdio relay has
// been drained, so the wait response follows the last byte of output.
func (p *process) finish(code uint32) {
	p.code = code
	close(p.done)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait blocks until the exit code is published, timeout passes (negative:
// never) or ctx ends.
func (p *process) wait(ctx context.Context, timeout time.Duration) (uint32, error) {
	var expire <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-p.done:
		return p.code, nil
	case <-expire:
		// An already-exited process wins over a zero timeout.
		select {
		case <-p.done:
			return p.code, nil
		default:
		}
		return 0, prot.Errorf(prot.HrVmcomputeTimeout, "timed out after %s waiting for process %d", timeout, p.pid)
	case <-ctx.Done():
		return 0, prot.NewError(prot.HrFail, ctx.Err())
	}
}

// markAnswered records that a waiter obtained the exit code and reports
// whether it was the first.
func (p *process) markAnswered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := !p.answered
	p.answered = true
	return first
}

// retainedExits is how many exits a process table keeps answerable
// after their first answered wait.
const retainedExits = 128

// processTable holds processes by pid. A process whose wait has been
// answered is replaced by a compact record (pid, exit code) that stays
// answerable until keep newer ones have been retired after it, so that a
// host that lost the answer (a bridge reconnect) can still learn the exit
// code. Memory is bounded by the running processes plus keep records.
type processTable struct {
	mu    sync.Mutex
	procs map[uint32]*process
	// ring holds the retained records, oldest at next once full.
	ring []*process
	next int
	keep int
}

func newProcessTable(keep int) *processTable {
	return &processTable{procs: make(map[uint32]*process), keep: keep}
}

func (t *processTable) add(p *process) {
	t.mu.Lock()
	t.procs[p.pid] = p
	t.mu.Unlock()
}

func (t *processTable) get(pid uint32) (*process, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[pid]
	return p, ok
}

// retire replaces p, once its exit has been answered, by a compact record
// holding only its pid and exit code, and forgets the oldest record beyond
// the table's bound. A process already retired, or no longer the one
// recorded under its pid (the pid was reused), is left alone.
func (t *processTable) retire(p *process) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.retained || t.procs[p.pid] != p {
		return
	}
	if t.keep <= 0 {
		delete(t.procs, p.pid)
		return
	}
	r := &process{pid: p.pid, console: p.console, done: p.done, code: p.code, answered: true, retained: true}
	t.procs[p.pid] = r
	if len(t.ring) < t.keep {
		t.ring = append(t.ring, r)
		return
	}
	old := t.ring[t.next]
	if t.procs[old.pid] == old {
		delete(t.procs, old.pid)
	}
	t.ring[t.next] = r
	t.next = (t.next + 1) % t.keep
}

func (t *processTable) all() []*process {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*process, 0, len(t.procs))
	for _, p := range t.procs {
		out = append(out, p)
	}
	return out
}

// waitAndRetire waits on an exec'd or external process; after the first
// answered wait the table keeps only its exit code (retire).
func waitAndRetire(ctx context.Context, t *processTable, p *process, timeout time.Duration) (uint32, error) {
	code, err := p.wait(ctx, timeout)
	if err != nil {
		return 0, err
	}
	p.markAnswered()
	t.retire(p)
	return code, nil
}
