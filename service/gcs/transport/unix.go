package transport

import (
	"context"
	"fmt"
	"net"
	"os"
)

// Unix maps vsock port N to the unix socket "<Prefix>_<N>" (N in decimal).
// Dialing port N connects to that socket; listening on port N creates it.
type Unix struct {
	Prefix string
}

// NewUnix returns a unix transport rooted at prefix.
func NewUnix(prefix string) *Unix { return &Unix{Prefix: prefix} }

// Path is the socket path that stands for port.
func (u *Unix) Path(port uint32) string {
	return fmt.Sprintf("%s_%d", u.Prefix, port)
}

// Dial connects to the socket of port.
func (u *Unix) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", u.Path(port))
	if err != nil {
		return nil, fmt.Errorf("dial unix port %d: %w", port, err)
	}
	return c, nil
}

// Listen creates the socket of port, replacing a stale one.
func (u *Unix) Listen(port uint32) (net.Listener, error) {
	p := u.Path(port)
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove stale socket %s: %w", p, err)
	}
	l, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("listen unix port %d: %w", port, err)
	}
	return l, nil
}

func (u *Unix) String() string { return "unix:" + u.Prefix }
