package bridge

import (
	"sync"
	"time"
)

// workerIdle is how long an idle handler goroutine waits for more work
// before it exits.
const workerIdle = 30 * time.Second

// workerPool runs request handlers on goroutines that stay around for a
// while after their request. A fresh goroutine per request would start on
// a small stack and grow it (JSON decoding is deep) on every request; a
// reused one keeps its grown stack. A request never waits for a worker:
// with none idle, a new one starts.
//
// The most recently idle worker takes the next request (a stack, not a
// queue): after a burst, a trickle of requests then keeps only a few
// workers busy and the others expire, where a FIFO hand-off would wake
// each of them in turn, often enough that none ever expired.
type workerPool struct {
	idle time.Duration

	mu      sync.Mutex
	waiting []*worker // idle workers, most recent last
}

type worker struct{ work chan func() }

func newWorkerPool(idle time.Duration) *workerPool {
	return &workerPool{idle: idle}
}

// run hands fn to the most recently idle worker or starts a new one.
func (p *workerPool) run(fn func()) {
	p.mu.Lock()
	if n := len(p.waiting); n > 0 {
		w := p.waiting[n-1]
		p.waiting[n-1] = nil
		p.waiting = p.waiting[:n-1]
		p.mu.Unlock()
		w.work <- fn // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.loop(&worker{work: make(chan func(), 1)}, fn)
}

func (p *workerPool) loop(w *worker, fn func()) {
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		fn()
		p.mu.Lock()
		p.waiting = append(p.waiting, w)
		p.mu.Unlock()
		t.Reset(p.idle)
		select {
		case fn = <-w.work:
			continue
		case <-t.C:
		}
		if p.retire(w) {
			return
		}
		// run took this worker just as its timer fired: its work is on
		// the way.
		fn = <-w.work
	}
}

// retire removes w from the idle workers and reports whether it was still
// there.
func (p *workerPool) retire(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.waiting {
		if x == w {
			copy(p.waiting[i:], p.waiting[i+1:])
			p.waiting[len(p.waiting)-1] = nil
			p.waiting = p.waiting[:len(p.waiting)-1]
			return true
		}
	}
	return false
}
