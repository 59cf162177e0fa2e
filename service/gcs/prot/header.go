package prot

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderSize is the size of the fixed frame header.
const HeaderSize = 16

// MaxHostMessageSize is the largest frame, header included, that the host
// accepts from the guest. Anything larger tears down the host's bridge.
const MaxHostMessageSize = 0x10000

// Header is the fixed 16-byte little-endian frame header. Size counts the
// header itself plus the body.
type Header struct {
	Type MessageIdentifier
	Size uint32
	ID   uint64
}

// Errors returned by DecodeHeader and CheckSize.
var (
	ErrFrameTooSmall = errors.New("frame size smaller than the 16-byte header")
	ErrFrameTooLarge = errors.New("frame size above the limit")
)

// Encode writes h into b, which must hold HeaderSize bytes.
func (h Header) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b[0:4], uint32(h.Type))
	binary.LittleEndian.PutUint32(b[4:8], h.Size)
	binary.LittleEndian.PutUint64(b[8:16], h.ID)
}

// DecodeHeader reads a header from b, which must hold HeaderSize bytes.
func DecodeHeader(b []byte) Header {
	return Header{
		Type: MessageIdentifier(binary.LittleEndian.Uint32(b[0:4])),
		Size: binary.LittleEndian.Uint32(b[4:8]),
		ID:   binary.LittleEndian.Uint64(b[8:16]),
	}
}

// CheckSize validates Size against the header length and a maximum total
// frame size, before anything is allocated from it.
func (h Header) CheckSize(max uint32) error {
	if h.Size < HeaderSize {
		return fmt.Errorf("%w: %d", ErrFrameTooSmall, h.Size)
	}
	if h.Size > max {
		return fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, h.Size, max)
	}
	return nil
}

// BodySize is the body length announced by the header. Call CheckSize
// first.
func (h Header) BodySize() uint32 { return h.Size - HeaderSize }
