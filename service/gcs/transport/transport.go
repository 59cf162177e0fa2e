package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// HostCID is the vsock context id of the host (VMADDR_CID_HOST).
const HostCID = 2

// BridgePort is the vsock port the host listens on for the GCS bridge.
const BridgePort = 0x40000000

// LogPort is the vsock port the host listens on for the GCS log stream.
const LogPort = 109

// EntropyPort is the vsock port the host writes boot entropy to.
const EntropyPort = 1

// Transport opens byte streams to host ports.
//
// Dial connects to a port the host listens on; this is how the bridge and
// every stdio stream are opened. Listen accepts connections on a port for
// hypervisors whose host side connects in (the -listen flag).
type Transport interface {
	Dial(ctx context.Context, port uint32) (net.Conn, error)
	Listen(port uint32) (net.Listener, error)
	// String describes the transport for logs, e.g. "vsock" or
	// "unix:/tmp/gcs".
	String() string
}

// HalfCloser is implemented by connections that can shut down their write
// side while still reading. Every transport here returns such connections.
type HalfCloser interface {
	CloseWrite() error
}

// ErrUnknownTransport is returned by Parse for a spec it does not know.
var ErrUnknownTransport = errors.New("unknown transport")

// Parse turns a -transport flag value into a Transport: "vsock" or
// "unix:<prefix>".
func Parse(spec string) (Transport, error) {
	switch {
	case spec == "" || spec == "vsock":
		return NewVsock(), nil
	case strings.HasPrefix(spec, "unix:"):
		prefix := strings.TrimPrefix(spec, "unix:")
		if prefix == "" {
			return nil, fmt.Errorf("transport %q: %w: the unix transport needs a path prefix", spec, ErrUnknownTransport)
		}
		return NewUnix(prefix), nil
	default:
		return nil, fmt.Errorf("transport %q: %w (want vsock or unix:<prefix>)", spec, ErrUnknownTransport)
	}
}
