package bridge

import (
	"context"
	"sync"
)

// frame is one encoded outgoing message, header included.
type frame struct {
	data []byte
	desc string
}

// outQueue is an unbounded FIFO of outgoing frames that survives
// connections. Producers never block; the connection writer pops.
type outQueue struct {
	mu     sync.Mutex
	frames []frame
	wake   chan struct{}
}

func newOutQueue() *outQueue { return &outQueue{wake: make(chan struct{}, 1)} }

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push appends f.
func (q *outQueue) push(f frame) {
	q.mu.Lock()
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	q.signal()
}

// pushFront puts back a frame that could not be written.
func (q *outQueue) pushFront(f frame) {
	q.mu.Lock()
	q.frames = append([]frame{f}, q.frames...)
	q.mu.Unlock()
	q.signal()
}

// tryPop removes the oldest frame, if any.
func (q *outQueue) tryPop() (frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return frame{}, false
	}
	f := q.frames[0]
	q.frames[0] = frame{}
	q.frames = q.frames[1:]
	if len(q.frames) == 0 {
		q.frames = nil
	}
	return f, true
}

// woken waits until a frame may have been pushed or ctx ends.
func (q *outQueue) woken(ctx context.Context) bool {
	select {
	case <-q.wake:
		return true
	case <-ctx.Done():
		return false
	}
}

// len reports the number of queued frames.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}
