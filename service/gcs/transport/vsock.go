package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/linuxkit/virtsock/pkg/vsock"
	"golang.org/x/sys/unix"
)

// Vsock dials the host over AF_VSOCK (CID 2).
//
// A single Dial retries connect() while it fails with ETIMEDOUT, up to
// DialAttempts times, DialDelay apart; any other error fails at once. This
// is the reference guest's rule; reconnect loops live above the transport.
type Vsock struct {
	CID          uint32
	DialAttempts int
	DialDelay    time.Duration
}

// NewVsock returns a vsock transport to the host with the reference retry
// rule (10 attempts, 100 ms apart).
func NewVsock() *Vsock {
	return &Vsock{CID: HostCID, DialAttempts: 10, DialDelay: 100 * time.Millisecond}
}

// Dial connects to the host's port.
func (v *Vsock) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	attempts := max(v.DialAttempts, 1)
	var lastErr error
	for i := 0; i < attempts; i++ {
		c, err := vsock.Dial(v.CID, port)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, unix.ETIMEDOUT) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial vsock %d:%d: %w", v.CID, port, ctx.Err())
		case <-time.After(v.DialDelay):
		}
	}
	return nil, fmt.Errorf("dial vsock %d:%d: %w", v.CID, port, lastErr)
}

// Listen accepts connections on port from any CID.
func (v *Vsock) Listen(port uint32) (net.Listener, error) {
	l, err := vsock.Listen(vsock.CIDAny, port)
	if err != nil {
		return nil, fmt.Errorf("listen vsock port %d: %w", port, err)
	}
	return l, nil
}

func (v *Vsock) String() string { return "vsock" }
