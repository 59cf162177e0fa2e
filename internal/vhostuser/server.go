package vhostuser

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// QueueConfig is a ring ready to run: the front-end has sent its size,
// addresses (translated to guest-physical), base and kick fd, and enabled
// it.
type QueueConfig struct {
	Size      uint16
	Desc      uint64
	Avail     uint64
	Used      uint64
	NextAvail uint16
	// Kick is signalled by the guest; the server closes it after
	// StopQueue returns.
	Kick *os.File
	Mem  *Memory
}

// Device is the virtio device behind the socket. The server calls it from
// one goroutine; the device may run its own goroutines for the rings.
type Device interface {
	// Features are the virtio feature bits the device offers.
	Features() uint64
	// SetFeatures receives the bits the driver accepted.
	SetFeatures(features uint64)
	// Config is the device configuration space.
	Config() []byte
	// NumQueues is how many rings the device runs.
	NumQueues() int
	// SetMemory installs a new memory table; the previous one is unmapped
	// once it returns.
	SetMemory(mem *Memory)
	// StartQueue starts ring index.
	StartQueue(index int, q QueueConfig) error
	// StopQueue stops ring index and returns its next available index.
	StopQueue(index int) uint16
	// SetCall sets (or with nil, clears) the eventfd that interrupts the
	// guest for ring index; the previous one is closed once it returns.
	SetCall(index int, call *os.File)
}

// OfferedProtocolFeatures are the protocol features this back-end
// implements.
const OfferedProtocolFeatures = ProtocolReplyAck | ProtocolConfig

type vring struct {
	num     uint32
	base    uint32
	addr    *VringAddr
	kick    *os.File
	call    *os.File
	enabled bool
	started bool
}

// Server serves one front-end connection.
type Server struct {
	conn     *net.UnixConn
	dev      Device
	log      *logrus.Entry
	features uint64
	proto    uint64
	mem      *Memory
	rings    []vring
}

// NewServer returns a server for the front-end connected on conn.
func NewServer(conn *net.UnixConn, dev Device, log *logrus.Entry) *Server {
	return &Server{conn: conn, dev: dev, log: log, rings: make([]vring, dev.NumQueues())}
}

// Serve handles messages until the front-end disconnects (nil) or the
// connection fails. On return every ring is stopped and memory unmapped.
func (s *Server) Serve() error {
	defer s.shutdown()
	hdr := make([]byte, HeaderSize)
	oob := make([]byte, unix.CmsgSpace(4*MaxRegions))
	for {
		h, fds, err := s.readHeader(hdr, oob)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		payload := make([]byte, h.Size)
		if _, err := io.ReadFull(s.conn, payload); err != nil {
			closeFDs(fds)
			return fmt.Errorf("read %v payload: %w", h.Request, err)
		}
		m, err := DecodePayload(h, payload)
		if err != nil {
			closeFDs(fds)
			s.log.WithError(err).Warn("vhost-user: undecodable message")
			if err := s.ack(h, false); err != nil {
				return err
			}
			continue
		}
		if err := s.handle(m, fds); err != nil {
			return err
		}
	}
}

func (s *Server) readHeader(hdr, oob []byte) (Header, []int, error) {
	n, oobn, _, _, err := s.conn.ReadMsgUnix(hdr, oob)
	if err != nil {
		return Header{}, nil, fmt.Errorf("read header: %w", err)
	}
	if n == 0 {
		return Header{}, nil, io.EOF
	}
	fds, perr := parseFDs(oob[:oobn])
	if n < HeaderSize {
		if _, err := io.ReadFull(s.conn, hdr[n:]); err != nil {
			closeFDs(fds)
			return Header{}, nil, fmt.Errorf("read header: %w", err)
		}
	}
	if perr != nil {
		closeFDs(fds)
		return Header{}, nil, perr
	}
	h, err := ParseHeader(hdr)
	if err != nil {
		// The stream cannot be re-synchronised after a bad header.
		closeFDs(fds)
		return Header{}, nil, err
	}
	return h, fds, nil
}

func parseFDs(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("SCM_RIGHTS: %w", err)
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func (s *Server) reply(h Header, p []byte) error {
	if _, err := s.conn.Write(encodeReply(h, p)); err != nil {
		return fmt.Errorf("reply to %v: %w", h.Request, err)
	}
	return nil
}

// ack answers a message that has no reply of its own when the front-end
// asked for one (REPLY_ACK): 0 for success, 1 for failure.
func (s *Server) ack(h Header, ok bool) error {
	if s.proto&ProtocolReplyAck == 0 || !h.NeedReply() {
		return nil
	}
	v := uint64(0)
	if !ok {
		v = 1
	}
	return s.reply(h, u64Payload(v))
}

// takeFD returns the single fd of a message as a file, or nil.
func takeFD(fds []int, name string) (*os.File, []int) {
	if len(fds) == 0 {
		return nil, nil
	}
	// Non-blocking, so a read pending on the file ends when it is closed.
	unix.SetNonblock(fds[0], true)
	return os.NewFile(uintptr(fds[0]), name), fds[1:]
}

func (s *Server) ring(i uint32) (*vring, error) {
	if int(i) >= len(s.rings) {
		return nil, fmt.Errorf("ring %d of %d: %w", i, len(s.rings), ErrBadRing)
	}
	return &s.rings[i], nil
}

// handle processes one decoded message; it returns an error only when the
// connection cannot go on.
func (s *Server) handle(m *Message, fds []int) error {
	log := s.log.WithField("request", m.Request.String())
	log.Debug("vhost-user message")
	var herr error
	defer func() { closeFDs(fds) }()
	switch m.Request {
	case GetFeatures:
		return s.reply(m.Header, u64Payload(s.dev.Features()|FeatureProtocolFeatures))
	case GetProtocolFeatures:
		return s.reply(m.Header, u64Payload(OfferedProtocolFeatures))
	case GetQueueNum:
		return s.reply(m.Header, u64Payload(uint64(len(s.rings))))
	case GetMaxMemSlots:
		return s.reply(m.Header, u64Payload(MaxRegions))
	case GetConfig:
		c := m.Config
		cfg := s.dev.Config()
		c.Data = make([]byte, c.Size)
		if int(c.Offset) < len(cfg) {
			copy(c.Data, cfg[c.Offset:])
		}
		return s.reply(m.Header, configPayload(c))
	case GetVringBase:
		r, err := s.ring(m.State.Index)
		if err != nil {
			log.WithError(err).Warn("vhost-user: GET_VRING_BASE")
			return s.reply(m.Header, vringStatePayload(m.State))
		}
		s.stopRing(int(m.State.Index), r)
		if r.kick != nil {
			r.kick.Close()
			r.kick = nil
		}
		r.enabled = false
		return s.reply(m.Header, vringStatePayload(VringState{Index: m.State.Index, Num: r.base}))
	case SetFeatures:
		s.features = m.U64
		s.dev.SetFeatures(m.U64 &^ FeatureProtocolFeatures)
	case SetProtocolFeatures:
		s.proto = m.U64 & OfferedProtocolFeatures
	case SetOwner, SetConfig:
	case ResetOwner, ResetDevice:
		for i := range s.rings {
			s.stopRing(i, &s.rings[i])
		}
	case SetMemTable:
		mem, err := MapMemory(m.Regions, fds)
		if err != nil {
			herr = err
			break
		}
		old := s.mem
		s.mem = mem
		s.dev.SetMemory(mem)
		if old != nil {
			old.Close()
		}
		for i := range s.rings {
			s.maybeStart(i, log)
		}
	case SetVringNum, SetVringBase, SetVringEnable:
		r, err := s.ring(m.State.Index)
		if err != nil {
			herr = err
			break
		}
		switch m.Request {
		case SetVringNum:
			r.num = m.State.Num
		case SetVringBase:
			r.base = m.State.Num
		case SetVringEnable:
			r.enabled = m.State.Num != 0
			if !r.enabled {
				s.stopRing(int(m.State.Index), r)
			}
		}
		s.maybeStart(int(m.State.Index), log)
	case SetVringAddr:
		r, err := s.ring(m.Addr.Index)
		if err != nil {
			herr = err
			break
		}
		a := m.Addr
		r.addr = &a
		s.maybeStart(int(a.Index), log)
	case SetVringKick, SetVringCall:
		r, err := s.ring(m.VringIndex())
		if err != nil {
			herr = err
			break
		}
		var f *os.File
		if !m.VringNoFD() {
			f, fds = takeFD(fds, m.Request.String())
			if f == nil {
				herr = fmt.Errorf("%v without an fd: %w", m.Request, ErrBadRing)
				break
			}
		} else if m.Request == SetVringKick {
			herr = fmt.Errorf("ring %d: polling mode (no kick fd) is not supported: %w", m.VringIndex(), ErrBadRing)
		}
		i := int(m.VringIndex())
		if m.Request == SetVringKick {
			s.stopRing(i, r)
			if r.kick != nil {
				r.kick.Close()
			}
			r.kick = f
			s.maybeStart(i, log)
		} else {
			old := r.call
			r.call = f
			s.dev.SetCall(i, f)
			if old != nil {
				old.Close()
			}
		}
	case SetVringErr, SetBackendReqFD, SetLogFD, SetLogBase:
		// fds closed below; logging and back-end requests are not offered
	default:
		log.WithField("size", m.Size).Warn("vhost-user: unknown message ignored")
		herr = fmt.Errorf("unsupported request %v", m.Request)
	}
	if herr != nil {
		log.WithError(herr).Warn("vhost-user: request failed")
	}
	return s.ack(m.Header, herr == nil)
}

func (s *Server) stopRing(i int, r *vring) {
	if r.started {
		r.base = uint32(s.dev.StopQueue(i))
		r.started = false
	}
}

// maybeStart starts ring i once everything it needs has arrived. With
// protocol features negotiated a ring also waits for SET_VRING_ENABLE.
func (s *Server) maybeStart(i int, log *logrus.Entry) {
	r := &s.rings[i]
	enabled := r.enabled || s.features&FeatureProtocolFeatures == 0
	if r.started || !enabled || r.kick == nil || r.addr == nil || r.num == 0 || s.mem == nil {
		return
	}
	fail := func(err error) { log.WithError(err).WithField("ring", i).Warn("vhost-user: ring not started") }
	if r.num > 1<<15 || r.base > 0xffff {
		fail(fmt.Errorf("size %d base %d: %w", r.num, r.base, ErrBadRing))
		return
	}
	var addrs [3]uint64
	for j, uva := range []uint64{r.addr.Desc, r.addr.Avail, r.addr.Used} {
		gpa, err := s.mem.UserToGuest(uva)
		if err != nil {
			fail(err)
			return
		}
		addrs[j] = gpa
	}
	q := QueueConfig{Size: uint16(r.num), Desc: addrs[0], Avail: addrs[1], Used: addrs[2],
		NextAvail: uint16(r.base), Kick: r.kick, Mem: s.mem}
	if err := s.dev.StartQueue(i, q); err != nil {
		fail(err)
		return
	}
	r.started = true
	log.WithFields(logrus.Fields{"ring": i, "size": r.num, "base": r.base}).Debug("vhost-user: ring started")
}

func (s *Server) shutdown() {
	for i := range s.rings {
		r := &s.rings[i]
		s.stopRing(i, r)
		if r.kick != nil {
			r.kick.Close()
		}
		if r.call != nil {
			s.dev.SetCall(i, nil)
			r.call.Close()
		}
		*r = vring{}
	}
	if s.mem != nil {
		s.dev.SetMemory(nil)
		s.mem.Close()
		s.mem = nil
	}
}
