package vhostuser

import (
	"encoding/binary"
	"fmt"
)

// Request is a vhost-user request code (front-end to back-end).
type Request uint32

// The request codes this back-end handles or recognises.
const (
	GetFeatures         Request = 1
	SetFeatures         Request = 2
	SetOwner            Request = 3
	ResetOwner          Request = 4
	SetMemTable         Request = 5
	SetLogBase          Request = 6
	SetLogFD            Request = 7
	SetVringNum         Request = 8
	SetVringAddr        Request = 9
	SetVringBase        Request = 10
	GetVringBase        Request = 11
	SetVringKick        Request = 12
	SetVringCall        Request = 13
	SetVringErr         Request = 14
	GetProtocolFeatures Request = 15
	SetProtocolFeatures Request = 16
	GetQueueNum         Request = 17
	SetVringEnable      Request = 18
	SetBackendReqFD     Request = 21
	GetConfig           Request = 24
	SetConfig           Request = 25
	ResetDevice         Request = 34
	GetMaxMemSlots      Request = 36
	SetStatus           Request = 39
	GetStatus           Request = 40
)

var requestNames = map[Request]string{
	GetFeatures: "GET_FEATURES", SetFeatures: "SET_FEATURES", SetOwner: "SET_OWNER",
	ResetOwner: "RESET_OWNER", SetMemTable: "SET_MEM_TABLE", SetLogBase: "SET_LOG_BASE",
	SetLogFD: "SET_LOG_FD", SetVringNum: "SET_VRING_NUM", SetVringAddr: "SET_VRING_ADDR",
	SetVringBase: "SET_VRING_BASE", GetVringBase: "GET_VRING_BASE", SetVringKick: "SET_VRING_KICK",
	SetVringCall: "SET_VRING_CALL", SetVringErr: "SET_VRING_ERR",
	GetProtocolFeatures: "GET_PROTOCOL_FEATURES", SetProtocolFeatures: "SET_PROTOCOL_FEATURES",
	GetQueueNum: "GET_QUEUE_NUM", SetVringEnable: "SET_VRING_ENABLE",
	SetBackendReqFD: "SET_BACKEND_REQ_FD", GetConfig: "GET_CONFIG", SetConfig: "SET_CONFIG",
	ResetDevice: "RESET_DEVICE", GetMaxMemSlots: "GET_MAX_MEM_SLOTS", SetStatus: "SET_STATUS",
	GetStatus: "GET_STATUS",
}

func (r Request) String() string {
	if n, ok := requestNames[r]; ok {
		return n
	}
	return fmt.Sprintf("REQUEST(%d)", uint32(r))
}

// Header flag bits.
const (
	FlagVersion   = 0x1 // the only protocol version, in bits 0-1
	flagVerMask   = 0x3
	FlagReply     = 0x4
	FlagNeedReply = 0x8
)

// Feature bits.
const (
	// FeatureProtocolFeatures (VHOST_USER_F_PROTOCOL_FEATURES) in
	// GET_FEATURES announces GET/SET_PROTOCOL_FEATURES.
	FeatureProtocolFeatures = 1 << 30
	// FeatureVersion1 is VIRTIO_F_VERSION_1.
	FeatureVersion1 = 1 << 32
)

// Protocol feature bits.
const (
	ProtocolMQ        = 1 << 0
	ProtocolReplyAck  = 1 << 3
	ProtocolConfig    = 1 << 9
	ProtocolMemSlots  = 1 << 15
	ProtocolStatus    = 1 << 16
	vringNoFDMask     = 1 << 8
	vringIndexMask    = 0xff
	HeaderSize        = 12
	MaxPayload        = 4096
	MaxRegions        = 8
	regionSize        = 32
	configHeaderSize  = 12
	MaxConfigSize     = 256
	vringStateSize    = 8
	vringAddrSize     = 40
	memTableHeaderLen = 8
)

// Header is the 12-byte message header.
type Header struct {
	Request Request
	Flags   uint32
	Size    uint32
}

// NeedReply reports whether the front-end asked for a REPLY_ACK.
func (h Header) NeedReply() bool { return h.Flags&FlagNeedReply != 0 }

// ParseHeader decodes a header and checks its version and payload size.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("header of %d bytes: %w", len(b), ErrShortMessage)
	}
	h := Header{
		Request: Request(binary.LittleEndian.Uint32(b[0:])),
		Flags:   binary.LittleEndian.Uint32(b[4:]),
		Size:    binary.LittleEndian.Uint32(b[8:]),
	}
	if h.Flags&flagVerMask != FlagVersion {
		return h, fmt.Errorf("flags %#x: %w", h.Flags, ErrBadVersion)
	}
	if h.Size > MaxPayload {
		return h, fmt.Errorf("%v payload of %d bytes: %w", h.Request, h.Size, ErrTooLarge)
	}
	return h, nil
}

// Region is one entry of SET_MEM_TABLE.
type Region struct {
	GuestPhys  uint64
	Size       uint64
	UserAddr   uint64 // the front-end's virtual address, used in SET_VRING_ADDR
	MmapOffset uint64 // offset of the region in its fd
}

// VringState is the payload of SET_VRING_NUM, SET_VRING_BASE,
// GET_VRING_BASE and SET_VRING_ENABLE.
type VringState struct {
	Index uint32
	Num   uint32
}

// VringAddr is the payload of SET_VRING_ADDR; the addresses are in the
// front-end's address space (see Memory.UserToGuest).
type VringAddr struct {
	Index uint32
	Flags uint32
	Desc  uint64
	Used  uint64
	Avail uint64
	Log   uint64
}

// ConfigRequest is the payload of GET_CONFIG and SET_CONFIG.
type ConfigRequest struct {
	Offset uint32
	Size   uint32
	Flags  uint32
	Data   []byte
}

// Message is a decoded message. Only the field its Request uses is set.
type Message struct {
	Header
	U64     uint64
	State   VringState
	Addr    VringAddr
	Regions []Region
	Config  ConfigRequest
	Payload []byte
}

// VringIndex is the ring index of a SET_VRING_KICK/CALL/ERR payload.
func (m *Message) VringIndex() uint32 { return uint32(m.U64 & vringIndexMask) }

// VringNoFD reports whether a SET_VRING_KICK/CALL/ERR carries no fd.
func (m *Message) VringNoFD() bool { return m.U64&vringNoFDMask != 0 }

// Decode decodes a whole message (header and payload) from b, the bytes
// of one message without its file descriptors. Payloads of requests this
// back-end does not know are kept raw.
func Decode(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if uint64(len(b)-HeaderSize) < uint64(h.Size) {
		return nil, fmt.Errorf("%v: payload %d of %d bytes: %w", h.Request, len(b)-HeaderSize, h.Size, ErrShortMessage)
	}
	return DecodePayload(h, b[HeaderSize:HeaderSize+int(h.Size)])
}

// DecodePayload decodes the payload p of a message with header h.
func DecodePayload(h Header, p []byte) (*Message, error) {
	m := &Message{Header: h, Payload: p}
	need := func(n int) error {
		if len(p) < n {
			return fmt.Errorf("%v: payload of %d bytes, need %d: %w", h.Request, len(p), n, ErrShortMessage)
		}
		return nil
	}
	le := binary.LittleEndian
	switch h.Request {
	case SetFeatures, SetProtocolFeatures, SetVringKick, SetVringCall, SetVringErr, SetLogBase, SetStatus:
		if err := need(8); err != nil {
			return nil, err
		}
		m.U64 = le.Uint64(p)
	case SetVringNum, SetVringBase, GetVringBase, SetVringEnable:
		if err := need(vringStateSize); err != nil {
			return nil, err
		}
		m.State = VringState{Index: le.Uint32(p), Num: le.Uint32(p[4:])}
	case SetVringAddr:
		if err := need(vringAddrSize); err != nil {
			return nil, err
		}
		m.Addr = VringAddr{Index: le.Uint32(p), Flags: le.Uint32(p[4:]), Desc: le.Uint64(p[8:]),
			Used: le.Uint64(p[16:]), Avail: le.Uint64(p[24:]), Log: le.Uint64(p[32:])}
	case SetMemTable:
		if err := need(memTableHeaderLen); err != nil {
			return nil, err
		}
		n := le.Uint32(p)
		if n == 0 || n > MaxRegions {
			return nil, fmt.Errorf("%v: %d regions: %w", h.Request, n, ErrTooLarge)
		}
		if err := need(memTableHeaderLen + int(n)*regionSize); err != nil {
			return nil, err
		}
		for i := 0; i < int(n); i++ {
			r := p[memTableHeaderLen+i*regionSize:]
			m.Regions = append(m.Regions, Region{GuestPhys: le.Uint64(r), Size: le.Uint64(r[8:]),
				UserAddr: le.Uint64(r[16:]), MmapOffset: le.Uint64(r[24:])})
		}
	case GetConfig, SetConfig:
		if err := need(configHeaderSize); err != nil {
			return nil, err
		}
		c := ConfigRequest{Offset: le.Uint32(p), Size: le.Uint32(p[4:]), Flags: le.Uint32(p[8:])}
		if c.Size > MaxConfigSize || c.Offset > MaxConfigSize {
			return nil, fmt.Errorf("%v: config offset %d size %d: %w", h.Request, c.Offset, c.Size, ErrTooLarge)
		}
		if err := need(configHeaderSize + int(c.Size)); err != nil {
			return nil, err
		}
		c.Data = p[configHeaderSize : configHeaderSize+int(c.Size)]
		m.Config = c
	}
	return m, nil
}

// encodeReply frames a reply to h with payload p.
func encodeReply(h Header, p []byte) []byte {
	b := make([]byte, HeaderSize+len(p))
	binary.LittleEndian.PutUint32(b[0:], uint32(h.Request))
	binary.LittleEndian.PutUint32(b[4:], FlagVersion|FlagReply)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(p)))
	copy(b[HeaderSize:], p)
	return b
}

func u64Payload(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}

func vringStatePayload(s VringState) []byte {
	b := make([]byte, vringStateSize)
	binary.LittleEndian.PutUint32(b, s.Index)
	binary.LittleEndian.PutUint32(b[4:], s.Num)
	return b
}

func configPayload(c ConfigRequest) []byte {
	b := make([]byte, configHeaderSize+len(c.Data))
	binary.LittleEndian.PutUint32(b, c.Offset)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(c.Data)))
	binary.LittleEndian.PutUint32(b[8:], c.Flags)
	copy(b[configHeaderSize:], c.Data)
	return b
}
