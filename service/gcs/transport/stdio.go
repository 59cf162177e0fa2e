package transport

import (
	"io"
	"net"
	"time"
)

// StdioConn is a net.Conn over a reader and a writer, used to run the
// bridge over the GCS's own stdin and stdout (-use-inouterr) or over a
// character device such as a virtio-serial port.
type StdioConn struct {
	R io.ReadCloser
	W io.WriteCloser
}

// Read reads from R.
func (s *StdioConn) Read(p []byte) (int, error) { return s.R.Read(p) }

// Write writes to W.
func (s *StdioConn) Write(p []byte) (int, error) { return s.W.Write(p) }

// Close closes both sides.
func (s *StdioConn) Close() error {
	werr := s.W.Close()
	rerr := s.R.Close()
	if werr != nil {
		return werr
	}
	return rerr
}

// CloseWrite closes the writer only.
func (s *StdioConn) CloseWrite() error { return s.W.Close() }

// LocalAddr names the stdio endpoint.
func (s *StdioConn) LocalAddr() net.Addr { return stdioAddr{} }

// RemoteAddr names the stdio endpoint.
func (s *StdioConn) RemoteAddr() net.Addr { return stdioAddr{} }

// SetDeadline is not supported on stdio and is ignored.
func (s *StdioConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is not supported on stdio and is ignored.
func (s *StdioConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is not supported on stdio and is ignored.
func (s *StdioConn) SetWriteDeadline(time.Time) error { return nil }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "stdio" }
