package bridge

import (
	"sync"
	"testing"
	"time"
)

// idleWorkers waits until n workers are idle and returns them.
func idleWorkers(t *testing.T, p *workerPool, n int) []*worker {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		if len(p.waiting) == n {
			ws := append([]*worker(nil), p.waiting...)
			p.mu.Unlock()
			return ws
		}
		p.mu.Unlock()
	}
	t.Fatalf("never %d idle workers", n)
	return nil
}

// TestWorkerPoolLIFO: after a burst, the most recently idle worker takes
// the next request and the others stay untouched, so they can expire.
func TestWorkerPoolLIFO(t *testing.T) {
	p := newWorkerPool(time.Hour)
	const burst = 8
	var started, release sync.WaitGroup
	started.Add(burst)
	release.Add(1)
	for i := 0; i < burst; i++ {
		p.run(func() { started.Done(); release.Wait() })
	}
	started.Wait()
	release.Done()
	before := idleWorkers(t, p, burst)
	for i := 0; i < 20; i++ {
		done := make(chan struct{})
		p.run(func() { close(done) })
		<-done
		after := idleWorkers(t, p, burst)
		for k := range after {
			if after[k] != before[k] {
				t.Fatalf("request %d: idle worker %d changed; only the last one may serve", i, k)
			}
		}
	}
}

// TestWorkerPoolExpires: idle workers exit, and a request after that
// starts a new one.
func TestWorkerPoolExpires(t *testing.T) {
	p := newWorkerPool(time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		p.run(wg.Done)
	}
	wg.Wait()
	idleWorkers(t, p, 0)
	done := make(chan struct{})
	p.run(func() { close(done) })
	<-done
}
