package hostclient

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// FirstStdioPort is where hosts start numbering stdio ports.
const FirstStdioPort = 0x40000001

// PortAllocator hands out stdio ports the way a host does: counting up
// from FirstStdioPort.
type PortAllocator struct {
	mu   sync.Mutex
	next uint32
}

// Next returns a fresh port.
func (a *PortAllocator) Next() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next < FirstStdioPort {
		a.next = FirstStdioPort
	}
	p := a.next
	a.next++
	return p
}

// Stdio holds the host's listeners for one process's streams and, once
// the guest has dialled them, the connections.
type Stdio struct {
	Ports prot.ExecuteProcessVsockStdioRelaySettings

	listeners [3]net.Listener
	conns     [3]net.Conn
}

// Stream indexes.
const (
	StdIn = iota
	StdOut
	StdErr
)

// OpenStdio listens on a new port for each requested stream, before the
// ExecuteProcess that names them is sent.
func OpenStdio(tr transport.Transport, ports *PortAllocator, stdin, stdout, stderr bool) (*Stdio, error) {
	s := &Stdio{}
	want := [3]bool{stdin, stdout, stderr}
	dst := [3]*uint32{&s.Ports.StdIn, &s.Ports.StdOut, &s.Ports.StdErr}
	for i, w := range want {
		if !w {
			continue
		}
		p := ports.Next()
		l, err := tr.Listen(p)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("listen for stdio stream %d: %w", i, err)
		}
		s.listeners[i] = l
		*dst[i] = p
	}
	return s, nil
}

// Accept waits for the guest to dial every opened stream.
func (s *Stdio) Accept(ctx context.Context) error {
	for i, l := range s.listeners {
		if l == nil || s.conns[i] != nil {
			continue
		}
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := l.Accept()
			ch <- res{c, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				return fmt.Errorf("accept stdio stream %d: %w", i, r.err)
			}
			s.conns[i] = r.c
			_ = l.Close()
		case <-ctx.Done():
			_ = l.Close()
			return fmt.Errorf("accept stdio stream %d: %w", i, ctx.Err())
		}
	}
	return nil
}

// Conn returns the connection of stream i (StdIn, StdOut, StdErr).
func (s *Stdio) Conn(i int) net.Conn { return s.conns[i] }

// CloseStdin half-closes stdin so the process sees EOF.
func (s *Stdio) CloseStdin() error {
	c := s.conns[StdIn]
	if c == nil {
		return nil
	}
	if hc, ok := c.(transport.HalfCloser); ok {
		return hc.CloseWrite()
	}
	return c.Close()
}

// Close closes every listener and connection.
func (s *Stdio) Close() {
	for i := range s.listeners {
		if s.listeners[i] != nil {
			_ = s.listeners[i].Close()
		}
		if s.conns[i] != nil {
			_ = s.conns[i].Close()
		}
	}
}
