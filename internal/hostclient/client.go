package hostclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// ErrProtocol marks a guest behaviour that a real host treats as fatal.
var ErrProtocol = errors.New("bridge protocol violation")

// ErrClosed is returned for calls on a closed client.
var ErrClosed = errors.New("bridge connection closed")

// RPCError is a failed response.
type RPCError struct {
	Type    prot.MessageIdentifier
	Result  prot.HResult
	Message string
	Records []prot.ErrorRecord
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("%s failed: %s: %s", e.Type, e.Result, e.Message)
}

// ResultOf returns the HRESULT of a failed call, or 0.
func ResultOf(err error) prot.HResult {
	var re *RPCError
	if errors.As(err, &re) {
		return re.Result
	}
	return 0
}

type reply struct {
	typ  prot.MessageIdentifier
	body []byte
}

// Client is one host-side bridge connection.
type Client struct {
	conn net.Conn

	wmu    sync.Mutex
	nextID uint64

	mu      sync.Mutex
	pending map[uint64]chan reply
	err     error
	done    chan struct{}
	// migrating keeps outstanding calls alive across a dropped connection.
	migrating bool

	notes chan *prot.ContainerNotification
}

// New starts serving conn. Notifications are buffered (up to 1024) on
// Notifications.
func New(conn net.Conn) *Client {
	c := &Client{
		conn:    conn,
		pending: make(map[uint64]chan reply),
		done:    make(chan struct{}),
		notes:   make(chan *prot.ContainerNotification, 1024),
	}
	go c.readLoop(conn)
	return c
}

// Migrate drops the connection while keeping every outstanding call, as a
// host does around a live migration (docs/protocol.md, "Reconnect and
// replay"). ResumeOn continues on the guest's next connection; until then
// calls cannot be sent.
func (c *Client) Migrate() error {
	c.mu.Lock()
	c.migrating = true
	conn := c.conn
	c.mu.Unlock()
	return conn.Close()
}

// Sent reports how many calls have been written to the connection and
// await their response. A call counts once its whole frame was written, so
// a test can wait for a request to have reached the gcs's socket before
// dropping the connection.
func (c *Client) Sent() int {
	c.wmu.Lock() // a call registers and writes its frame under wmu
	defer c.wmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// ResumeOn continues on conn after Migrate: responses to calls sent on the
// old connection are matched by their original ids, and new calls number
// on from the old counter. The caller renegotiates (Negotiate).
func (c *Client) ResumeOn(conn net.Conn) {
	c.wmu.Lock()
	c.mu.Lock()
	c.conn = conn
	c.migrating = false
	c.mu.Unlock()
	c.wmu.Unlock()
	go c.readLoop(conn)
}

// connFailed ends the client unless conn was dropped on purpose.
func (c *Client) connFailed(conn net.Conn, err error) {
	c.mu.Lock()
	keep := c.migrating || conn != c.conn
	c.mu.Unlock()
	if !keep {
		c.fail(err)
	}
}

// Notifications delivers container exit notifications in arrival order.
func (c *Client) Notifications() <-chan *prot.ContainerNotification { return c.notes }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while it is up).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	conn := c.conn
	c.migrating = false
	c.mu.Unlock()
	err := conn.Close()
	c.fail(ErrClosed)
	return err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

func (c *Client) readLoop(conn net.Conn) {
	r := bufio.NewReader(conn)
	var hdr [prot.HeaderSize]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			c.connFailed(conn, fmt.Errorf("read header: %w", err))
			return
		}
		h := prot.DecodeHeader(hdr[:])
		if err := h.CheckSize(prot.MaxHostMessageSize); err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrProtocol, err))
			return
		}
		body := make([]byte, h.BodySize())
		if _, err := io.ReadFull(r, body); err != nil {
			c.connFailed(conn, fmt.Errorf("read body: %w", err))
			return
		}
		switch h.Type & prot.TypeMask {
		case prot.TypeResponse:
			c.mu.Lock()
			ch, ok := c.pending[h.ID]
			delete(c.pending, h.ID)
			c.mu.Unlock()
			if !ok {
				c.fail(fmt.Errorf("%w: response %s for unknown id %d", ErrProtocol, h.Type, h.ID))
				return
			}
			ch <- reply{typ: h.Type, body: body}
		case prot.TypeNotification:
			if h.Type != prot.ComputeSystemNotificationV1 {
				c.fail(fmt.Errorf("%w: unknown notification %s", ErrProtocol, h.Type))
				return
			}
			var n prot.ContainerNotification
			if err := json.Unmarshal(body, &n); err != nil {
				c.fail(fmt.Errorf("%w: bad notification body: %w", ErrProtocol, err))
				return
			}
			select {
			case c.notes <- &n:
			default:
				c.fail(fmt.Errorf("notification buffer full"))
				return
			}
		default:
			c.fail(fmt.Errorf("%w: unexpected message type %s", ErrProtocol, h.Type))
			return
		}
	}
}

// Call sends a request of type t with body req and decodes the response
// into resp (which must embed prot.MessageResponseBase). A non-zero Result
// is returned as *RPCError.
func (c *Client) Call(ctx context.Context, t prot.MessageIdentifier, req any, resp prot.Response) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return fmt.Errorf("encode %s: %w", t, err)
	}
	return c.CallRaw(ctx, t, buf.Bytes(), resp)
}

// CallRaw is Call with a body sent exactly as given, for tests that send
// malformed JSON.
func (c *Client) CallRaw(ctx context.Context, t prot.MessageIdentifier, body []byte, resp prot.Response) error {
	ch := make(chan reply, 1)
	c.wmu.Lock()
	id := c.nextID
	c.nextID++
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		return fmt.Errorf("%s: %w", t, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	err := c.writeFrame(t, id, body)
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s id %d: %w", t, id, c.Err())
		}
		if want := prot.ResponseFor(t); r.typ != want {
			err := fmt.Errorf("%w: response type %s for %s", ErrProtocol, r.typ, t)
			c.fail(err)
			return err
		}
		err := decodeResponse(t, r.body, resp)
		if errors.Is(err, ErrProtocol) {
			// A body the host cannot decode tears its bridge down.
			c.fail(err)
		}
		return err
	case <-ctx.Done():
		// A real host abandons the call but still expects the response;
		// keep the id registered so the late reply is consumed silently.
		c.mu.Lock()
		if _, ok := c.pending[id]; ok {
			c.pending[id] = make(chan reply, 1)
		}
		c.mu.Unlock()
		return fmt.Errorf("%s id %d: %w", t, id, ctx.Err())
	}
}

func decodeResponse(t prot.MessageIdentifier, body []byte, resp prot.Response) error {
	var base prot.MessageResponseBase
	if err := json.Unmarshal(body, &base); err != nil {
		return fmt.Errorf("%w: %s response body: %w", ErrProtocol, t, err)
	}
	if base.Result != 0 {
		return &RPCError{Type: t, Result: prot.HResult(uint32(base.Result)), Message: base.ErrorMessage, Records: base.ErrorRecords}
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(body, resp); err != nil {
		return fmt.Errorf("%w: %s response body: %w", ErrProtocol, t, err)
	}
	return nil
}

func (c *Client) writeFrame(t prot.MessageIdentifier, id uint64, body []byte) error {
	buf := make([]byte, prot.HeaderSize+len(body))
	prot.Header{Type: t, Size: uint32(len(buf)), ID: id}.Encode(buf)
	copy(buf[prot.HeaderSize:], body)
	if _, err := c.conn.Write(buf); err != nil {
		return fmt.Errorf("write %s: %w", t, err)
	}
	return nil
}

// WriteRaw writes raw bytes on the connection, for tests that send
// malformed frames.
func (c *Client) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(b)
	return err
}
