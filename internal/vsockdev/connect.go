package vsockdev

import (
	"fmt"
	"strconv"
	"strings"
)

// maxConnectLine bounds the hybrid-vsock request line.
const maxConnectLine = 64

// ParseConnect parses a hybrid-vsock request line, "CONNECT <port>" with
// or without its trailing newline, and returns the guest port.
func ParseConnect(line string) (uint32, error) {
	line = strings.TrimSuffix(line, "\n")
	if len(line) > maxConnectLine {
		return 0, fmt.Errorf("%d bytes: %w", len(line), ErrBadConnectLine)
	}
	rest, ok := strings.CutPrefix(line, "CONNECT ")
	if !ok || rest == "" || rest[0] == '+' || rest[0] == '-' {
		return 0, fmt.Errorf("%q: %w", line, ErrBadConnectLine)
	}
	port, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", line, ErrBadConnectLine)
	}
	return uint32(port), nil
}

// FormatOK is the reply to an accepted CONNECT: the host-side port of the
// new connection.
func FormatOK(hostPort uint32) string { return fmt.Sprintf("OK %d\n", hostPort) }
