package bridge

import "time"

// workerIdle is how long an idle handler goroutine waits for more work
// before it exits.
const workerIdle = 30 * time.Second

// workerPool runs request handlers on goroutines that stay around for a
// while after their request. A fresh goroutine per request would start on
// a small stack and grow it (JSON decoding is deep) on every request; a
// reused one keeps its grown stack. A request never waits for a worker:
// with none idle, a new one starts.
type workerPool struct {
	work chan func()
	idle time.Duration
}

func newWorkerPool(idle time.Duration) workerPool {
	return workerPool{work: make(chan func()), idle: idle}
}

// run hands fn to an idle worker or starts a new one.
func (p workerPool) run(fn func()) {
	select {
	case p.work <- fn:
	default:
		go p.worker(fn)
	}
}

func (p workerPool) worker(fn func()) {
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		fn()
		t.Reset(p.idle)
		select {
		case fn = <-p.work:
		case <-t.C:
			return
		}
	}
}
