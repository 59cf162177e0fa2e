package vsockdev

import (
	"encoding/binary"
	"fmt"
)

// HostCID is the host's context id.
const HostCID = 2

// Header is the 44-byte virtio_vsock_hdr (little endian, packed).
type Header struct {
	SrcCID   uint64
	DstCID   uint64
	SrcPort  uint32
	DstPort  uint32
	Len      uint32
	Type     uint16
	Op       uint16
	Flags    uint32
	BufAlloc uint32
	FwdCnt   uint32
}

// HeaderSize is the encoded size of Header.
const HeaderSize = 44

// TypeStream is VIRTIO_VSOCK_TYPE_STREAM, the only type this device offers.
const TypeStream = 1

// Operations.
const (
	OpInvalid       = 0
	OpRequest       = 1
	OpResponse      = 2
	OpRst           = 3
	OpShutdown      = 4
	OpRW            = 5
	OpCreditUpdate  = 6
	OpCreditRequest = 7
)

// Shutdown flags.
const (
	ShutdownRcv  = 1
	ShutdownSend = 2
)

var opNames = [...]string{"INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN", "RW", "CREDIT_UPDATE", "CREDIT_REQUEST"}

// OpName names an operation for logs.
func OpName(op uint16) string {
	if int(op) < len(opNames) {
		return opNames[op]
	}
	return fmt.Sprintf("OP(%d)", op)
}

// DecodeHeader decodes the header at the start of b.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%d bytes: %w", len(b), ErrShortPacket)
	}
	le := binary.LittleEndian
	return Header{
		SrcCID: le.Uint64(b[0:]), DstCID: le.Uint64(b[8:]),
		SrcPort: le.Uint32(b[16:]), DstPort: le.Uint32(b[20:]),
		Len: le.Uint32(b[24:]), Type: le.Uint16(b[28:]), Op: le.Uint16(b[30:]),
		Flags: le.Uint32(b[32:]), BufAlloc: le.Uint32(b[36:]), FwdCnt: le.Uint32(b[40:]),
	}, nil
}

// Encode writes h into the first HeaderSize bytes of b.
func (h *Header) Encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], h.SrcCID)
	le.PutUint64(b[8:], h.DstCID)
	le.PutUint32(b[16:], h.SrcPort)
	le.PutUint32(b[20:], h.DstPort)
	le.PutUint32(b[24:], h.Len)
	le.PutUint16(b[28:], h.Type)
	le.PutUint16(b[30:], h.Op)
	le.PutUint32(b[32:], h.Flags)
	le.PutUint32(b[36:], h.BufAlloc)
	le.PutUint32(b[40:], h.FwdCnt)
}

// DecodePacket decodes a whole packet: the header and its Len bytes of
// payload, which must not exceed max.
func DecodePacket(b []byte, max uint32) (Header, []byte, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.Len > max {
		return h, nil, fmt.Errorf("payload of %d bytes above %d: %w", h.Len, max, ErrShortPacket)
	}
	if uint64(len(b)-HeaderSize) < uint64(h.Len) {
		return h, nil, fmt.Errorf("payload of %d bytes, header says %d: %w", len(b)-HeaderSize, h.Len, ErrShortPacket)
	}
	return h, b[HeaderSize : HeaderSize+int(h.Len)], nil
}
