package stdio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

const (
	// replaySize is how much of the most recent output is sent again on a
	// re-dialled connection (docs/protocol.md, "Reconnect and replay": data
	// in flight when the old connection broke may be lost; duplicates are
	// possible).
	replaySize = 128 << 10
	// redialInterval paces attempts to re-dial a broken output stream.
	redialInterval = 100 * time.Millisecond
)

// EnableReconnect makes the relay that takes these connections re-dial an
// output stream whose connection breaks (EPIPE, ECONNRESET, ENOTCONN) on
// the same host port, every 100 ms, and replay the last 128 KiB written
// on the new connection; it gives up once the process exited or the relay
// is closed. This is what keeps a container init's stdout and stderr alive
// across a host-side bridge reconnect (live migration). Output streams
// that reconnect are copied through user space (no splice), to keep the
// replay window.
func (s *ConnectionSet) EnableReconnect(tr transport.Transport, ports prot.ExecuteProcessVsockStdioRelaySettings) {
	s.redial = func(ctx context.Context, stream string) (net.Conn, error) {
		port := ports.StdOut
		if stream == "stderr" {
			port = ports.StdErr
		}
		return tr.Dial(ctx, port)
	}
}

// disconnected reports whether a write error means the host end went away.
func disconnected(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ENOTCONN)
}

// replayRing keeps the most recent replaySize bytes written. It grows
// with the output, so a quiet stream holds little.
type replayRing struct {
	buf  []byte // grows to replaySize, then wraps
	next int    // once full: where the oldest byte is and the next goes
}

func newReplayRing() *replayRing { return &replayRing{} }

func (r *replayRing) write(b []byte) {
	if room := replaySize - len(r.buf); room > 0 {
		n := min(room, len(b))
		r.buf = append(r.buf, b[:n]...)
		b = b[n:]
	}
	for len(b) > 0 {
		if len(b) >= replaySize {
			copy(r.buf, b[len(b)-replaySize:])
			r.next = 0
			return
		}
		n := copy(r.buf[r.next:], b)
		r.next = (r.next + n) % replaySize
		b = b[n:]
	}
}

// bytes returns the kept bytes, oldest first.
func (r *replayRing) bytes() []byte {
	return append(append([]byte(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

// reconnect re-dials the pump's stream until a new connection has taken
// the replayed tail, or the process exited, or the relay was closed.
func (p *outPump) reconnect(cause error) error {
	log := p.log.WithField("cause", cause.Error())
	log.Warn("output stream connection lost; re-dialling")
	for attempt := 1; ; attempt++ {
		select {
		case <-p.ph.aborted:
			return ErrRelayClosed
		case <-p.ph.exited:
			return fmt.Errorf("write %s: %w (not re-dialled: the process exited)", p.name, cause)
		case <-time.After(redialInterval):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := p.redial(ctx)
		cancel()
		if err != nil {
			continue
		}
		if _, err := writeAll(c, p.ring.bytes()); err != nil {
			c.Close()
			continue
		}
		old := p.dst
		p.dst = c
		if p.swapped != nil {
			p.swapped(old, c)
		}
		_ = old.Close()
		log.WithField("attempts", attempt).Info("output stream re-dialled; recent output replayed")
		return nil
	}
}
