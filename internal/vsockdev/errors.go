package vsockdev

import "errors"

var (
	// ErrShortPacket is a packet shorter than its header or its len field.
	ErrShortPacket = errors.New("vsock: short packet")
	// ErrBadConnectLine is a hybrid-vsock request line that is not
	// "CONNECT <port>".
	ErrBadConnectLine = errors.New("vsock: bad CONNECT line")
	// ErrConnectRefused is a host connect the guest reset.
	ErrConnectRefused = errors.New("vsock: connection refused by the guest")
)
