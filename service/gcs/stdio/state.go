package stdio

import (
	"sync"
	"time"
)

// phase tracks the two one-way transitions every relay goes through: the
// owner reporting the process exit (start of the bounded drain) and an
// abort (Close).
type phase struct {
	exited    chan struct{}
	exitOnce  sync.Once
	aborted   chan struct{}
	abortOnce sync.Once
}

func newPhase() *phase {
	return &phase{exited: make(chan struct{}), aborted: make(chan struct{})}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (p *phase) isExited() bool  { return closed(p.exited) }
func (p *phase) isAborted() bool { return closed(p.aborted) }

// deadliner is an output source whose reads can be given a deadline.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// exit marks the process as exited and arms the idle deadline on srcs.
func (p *phase) exit(idle time.Duration, srcs ...deadliner) {
	p.exitOnce.Do(func() { close(p.exited) })
	at := time.Now().Add(idle)
	for _, s := range srcs {
		if s != nil {
			_ = s.SetReadDeadline(at)
		}
	}
}

// abort marks the relay as aborted and wakes every reader of srcs.
func (p *phase) abort(srcs ...deadliner) {
	p.exitOnce.Do(func() { close(p.exited) })
	p.abortOnce.Do(func() { close(p.aborted) })
	past := time.Unix(1, 0)
	for _, s := range srcs {
		if s != nil {
			_ = s.SetReadDeadline(past)
		}
	}
}
