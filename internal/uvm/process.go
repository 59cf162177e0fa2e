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

	done chan struct{}
	code uint32

	mu       sync.Mutex
	answered bool
}

func newProcess(pid uint32, relay stdio.Relay, signal func(int) error) *process {
	return &process{pid: pid, relay: relay, signal: signal, done: make(chan struct{})}
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

// processTable holds processes by pid.
type processTable struct {
	mu    sync.Mutex
	procs map[uint32]*process
}

func newProcessTable() *processTable { return &processTable{procs: make(map[uint32]*process)} }

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

// forget removes p if it is still the process recorded under its pid.
func (t *processTable) forget(p *process) {
	t.mu.Lock()
	if t.procs[p.pid] == p {
		delete(t.procs, p.pid)
	}
	t.mu.Unlock()
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

// waitAndForget waits on a process that is forgotten after its first
// answered wait (exec'd and external processes).
func waitAndForget(ctx context.Context, t *processTable, p *process, timeout time.Duration) (uint32, error) {
	code, err := p.wait(ctx, timeout)
	if err != nil {
		return 0, err
	}
	p.markAnswered()
	t.forget(p)
	return code, nil
}
