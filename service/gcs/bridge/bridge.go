package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/tracing"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// DefaultMaxRequestSize is the default cap on an incoming frame, header
// included. Hosts send full OCI specs in Create, far below this.
const DefaultMaxRequestSize = 4 << 20

// maxErrorMessage bounds the error text copied into a response so that a
// failed response always fits the host's 64 KiB frame limit.
const maxErrorMessage = 8 << 10

// slowRequest is how long a sequential request may run before a warning.
const slowRequest = 5 * time.Second

// Config configures a Bridge.
type Config struct {
	// Mux holds the handlers served after negotiation.
	Mux *Mux
	// EnableV4 registers the protocol; without it every request is
	// answered E_NOTIMPL (the reference's behaviour without -v4).
	EnableV4 bool
	// Capabilities are advertised in the NegotiateProtocol response.
	Capabilities prot.GcsCapabilities
	// MaxRequestSize caps incoming frames; 0 means DefaultMaxRequestSize.
	MaxRequestSize uint32
	// Sequential handles requests one at a time in arrival order, except
	// WaitForProcess (confidential VMs).
	Sequential bool
	// Log is the bridge's logger.
	Log *logrus.Entry
	// Tracer, when set, gives every request a span, a child of the trace
	// context the host sent in it, and every notification a span.
	Tracer *tracing.Tracer
}

// Bridge serves the protocol over successive connections.
type Bridge struct {
	cfg      Config
	log      *logrus.Entry
	out      *outQueue
	workers  *workerPool
	inflight sync.WaitGroup
	seq      sync.Mutex

	// wmu serialises writes on the current connection. Whoever holds it
	// drains the queue in order: a producer that finds it free writes its
	// own frame at once (no hand-off to the writer goroutine); one that
	// finds it taken leaves the frame to the holder or the writer.
	wmu  sync.Mutex
	cur  net.Conn // the connection being served, nil between connections
	werr error    // first write error on cur
}

// New returns a bridge.
func New(cfg Config) *Bridge {
	if cfg.MaxRequestSize == 0 {
		cfg.MaxRequestSize = DefaultMaxRequestSize
	}
	if cfg.Mux == nil {
		cfg.Mux = NewMux()
	}
	log := cfg.Log
	if log == nil {
		log = logging.Discard()
	}
	return &Bridge{cfg: cfg, log: log.WithField("component", "bridge"), out: newOutQueue(), workers: newWorkerPool(workerIdle)}
}

// Errors that end a connection.
var (
	ErrBadHeader = errors.New("invalid frame header")
)

// Notify queues a container notification. It is written on the current
// connection, or on the next one if none is being served; it is never
// dropped.
func (b *Bridge) Notify(n *prot.ContainerNotification) {
	f, err := encodeFrame(prot.ComputeSystemNotificationV1, 0, n)
	if err != nil {
		// A notification is a small fixed struct: this cannot happen with
		// valid ids, but never lose it silently.
		b.log.WithError(err).WithField("cid", n.ContainerID).Error("encode notification")
		return
	}
	b.log.WithFields(logrus.Fields{"cid": n.ContainerID, "type": n.Type}).Info("queue container notification")
	span := noSpan()
	if b.cfg.Tracer != nil {
		_, span = b.cfg.Tracer.StartNotification(context.Background(), attribute.String("notification", fmt.Sprintf("%+v", *n)))
	}
	b.send(f)
	span.End()
}

// noSpan stands for the span of a request when tracing is off.
func noSpan() trace.Span { return trace.SpanFromContext(context.Background()) }

// traceRequest starts the span of req (from the trace context the host
// sent in it) when tracing is on, with the attributes the reference gives
// it.
func (b *Bridge) traceRequest(ctx context.Context, req *Request) (context.Context, trace.Span) {
	if b.cfg.Tracer == nil {
		return ctx, noSpan()
	}
	base := req.Base()
	return b.cfg.Tracer.StartRequest(ctx, base.OpenTelemetrySpanContext,
		attribute.Int64("message-id", int64(req.ID)),
		attribute.String("message-type", req.Type.String()),
		attribute.String("activityID", base.ActivityID),
		attribute.String("cid", base.ContainerID))
}

// Pending reports the number of frames waiting to be written.
func (b *Bridge) Pending() int { return b.out.len() }

// Wait blocks until every request handler started so far has returned.
func (b *Bridge) Wait() { b.inflight.Wait() }

// Serve runs the protocol on conn until the connection fails or ctx ends.
// Requests still running when it returns keep running; their responses are
// written on the next connection served.
func (b *Bridge) Serve(ctx context.Context, conn net.Conn) error {
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	log := b.log.WithField("remote", conn.RemoteAddr().String())
	log.Info("bridge connection up")

	// The reader only notices the end of ctx, or a failed write, through
	// the connection: close it in both cases.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	b.wmu.Lock()
	b.cur, b.werr = conn, nil
	b.flushLocked()
	b.wmu.Unlock()
	writerDone := make(chan struct{})
	go func() {
		b.writeLoop(connCtx)
		close(writerDone)
	}()

	readErr := b.readLoop(ctx, conn, log)
	cancel()
	_ = conn.Close()
	<-writerDone
	b.wmu.Lock()
	if b.werr != nil {
		readErr = b.werr
	}
	b.cur, b.werr = nil, nil
	b.wmu.Unlock()
	log.WithError(readErr).Info("bridge connection down")
	return readErr
}

// send queues f and, unless another goroutine is writing, writes out the
// queue itself.
func (b *Bridge) send(f frame) {
	b.out.push(f)
	if !b.wmu.TryLock() {
		return
	}
	b.flushLocked()
	b.wmu.Unlock()
}

// writeLoop writes frames left in the queue by producers that found the
// connection busy, until ctx ends.
func (b *Bridge) writeLoop(ctx context.Context) {
	for b.out.woken(ctx) {
		b.wmu.Lock()
		b.flushLocked()
		b.wmu.Unlock()
	}
}

// flushLocked writes queued frames in order on the current connection. A
// failed write puts the frame back for the next connection and closes this
// one so that its reader ends. Called with wmu held.
func (b *Bridge) flushLocked() {
	for b.cur != nil && b.werr == nil {
		f, ok := b.out.tryPop()
		if !ok {
			return
		}
		if _, err := b.cur.Write(f.data); err != nil {
			b.out.pushFront(f)
			b.werr = fmt.Errorf("write %s: %w", f.desc, err)
			_ = b.cur.Close()
			return
		}
	}
}

func (b *Bridge) readLoop(ctx context.Context, conn net.Conn, log *logrus.Entry) error {
	fr := newFrameReader(conn, b.cfg.MaxRequestSize)
	var version uint32 // 0 until negotiated on this connection
	for {
		h, body, err := fr.next()
		if errors.Is(err, ErrBadHeader) {
			log.WithFields(logrus.Fields{"type": h.Type, "size": h.Size, "id": h.ID}).WithError(err).Error("dropping connection")
		}
		if err != nil {
			return err
		}
		req := &Request{Type: h.Type, ID: h.ID, Body: body, Version: version}
		rctx, span := b.traceRequest(ctx, req)

		if b.cfg.EnableV4 && version == 0 && h.Type == prot.ComputeSystemNegotiateProtocolV1 {
			// Negotiate inline so a request pipelined behind it sees the
			// negotiated version.
			resp, err := b.negotiate(rctx, req)
			if err == nil {
				version = prot.ProtocolVersion
			}
			b.respond(req, resp, err, nil, span)
			continue
		}

		h2, ok := b.route(req.Type, version)
		if !ok {
			b.respond(req, nil, prot.Errorf(prot.HrNotImpl, "%s is not supported in this state (negotiated version %d)", req.Type, version), nil, span)
			continue
		}
		b.dispatch(rctx, req, h2, span)
	}
}

// route picks the handler for a request in the connection's state.
func (b *Bridge) route(t prot.MessageIdentifier, version uint32) (Handler, bool) {
	if !b.cfg.EnableV4 || version == 0 || !t.IsRequest() {
		return nil, false
	}
	return b.cfg.Mux.lookup(t)
}

func (b *Bridge) dispatch(ctx context.Context, req *Request, h Handler, span trace.Span) {
	run := func() {
		defer b.inflight.Done()
		after := &afterResponse{}
		hctx := context.WithValue(ctx, afterKey{}, after)
		resp, err := b.call(hctx, req, h)
		if errors.Is(err, ErrNoResponse) {
			span.End()
			return
		}
		b.respond(req, resp, err, after, span)
	}
	b.inflight.Add(1)
	if b.cfg.Sequential && req.Type != prot.ComputeSystemWaitForProcessV1 {
		start := time.Now()
		b.seq.Lock()
		run()
		b.seq.Unlock()
		if d := time.Since(start); d > slowRequest {
			b.log.WithFields(logrus.Fields{"type": req.Type, "id": req.ID, "duration": d}).Warn("slow sequential request")
		}
		return
	}
	b.workers.run(run)
}

// call runs the handler, turning a panic into an error so that no input can
// take the GCS down.
func (b *Bridge) call(ctx context.Context, req *Request, h Handler) (resp prot.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.log.WithFields(logrus.Fields{"type": req.Type, "id": req.ID, "panic": r}).Error("handler panicked")
			resp, err = nil, prot.Errorf(prot.HrFail, "internal error handling %s: %v", req.Type, r)
		}
	}()
	return h.ServeRequest(ctx, req)
}

// respond encodes and queues the response to req, then ends the
// request's span.
func (b *Bridge) respond(req *Request, resp prot.Response, err error, after *afterResponse, span trace.Span) {
	base := req.Base()
	log := b.log.WithFields(logrus.Fields{"type": req.Type, "id": req.ID, "cid": base.ContainerID})
	defer span.End()
	if err != nil {
		tracing.SetError(span, err)
		resp = errorResponse(err)
		log.WithError(err).WithField("result", prot.HResult(uint32(resp.Base().Result)).String()).Info("request failed")
	} else if resp == nil {
		resp = &prot.MessageResponseBase{}
	}
	if isGUID(base.ActivityID) {
		resp.Base().ActivityID = base.ActivityID
	}
	rt := prot.ResponseFor(req.Type)
	f, encErr := encodeFrame(rt, req.ID, resp)
	if encErr != nil {
		log.WithError(encErr).Error("response does not fit the host's frame limit; answering E_FAIL")
		fallback := errorResponse(prot.Errorf(prot.HrFail, "response to %s could not be sent: %v", req.Type, encErr))
		fallback.ActivityID = resp.Base().ActivityID
		f, encErr = encodeFrame(rt, req.ID, fallback)
		if encErr != nil {
			log.WithError(encErr).Error("cannot encode fallback response")
			return
		}
	}
	b.send(f)
	span.SetAttributes(attribute.String("response-message-type", rt.String()))
	if after != nil {
		after.run()
	}
}

// errorResponse builds the base-only failure body for err.
func errorResponse(err error) *prot.MessageResponseBase {
	hr := prot.HrFail
	var pe *prot.Error
	if errors.As(err, &pe) {
		hr = pe.Result
	}
	msg := err.Error()
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage] + "...(truncated)"
	}
	return &prot.MessageResponseBase{
		Result:       hr.Int32(),
		ErrorMessage: msg,
		ErrorRecords: []prot.ErrorRecord{{
			Result:     hr.Int32(),
			Message:    msg,
			ModuleName: "gcs",
			FileName:   "",
			Line:       prot.UnknownLine,
		}},
	}
}

// encodeFrame marshals body and prefixes the header, refusing frames the
// host would reject.
func encodeFrame(t prot.MessageIdentifier, id uint64, body any) (frame, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return frame{}, fmt.Errorf("encode %s: %w", t, err)
	}
	size := prot.HeaderSize + len(data)
	if size > prot.MaxHostMessageSize {
		return frame{}, fmt.Errorf("%s id %d is %d bytes, above the host's %d-byte limit", t, id, size, prot.MaxHostMessageSize)
	}
	buf := make([]byte, size)
	prot.Header{Type: t, Size: uint32(size), ID: id}.Encode(buf)
	copy(buf[prot.HeaderSize:], data)
	return frame{data: buf, desc: fmt.Sprintf("%s id %d", t, id)}, nil
}

// negotiate implements NegotiateProtocol (docs/protocol.md, "Negotiation").
func (b *Bridge) negotiate(ctx context.Context, req *Request) (_ prot.Response, err error) {
	_, span := tracing.Start(ctx, "opengcs::bridge::negotiateProtocolV2")
	defer func() {
		tracing.SetError(span, err)
		span.End()
	}()
	var r prot.NegotiateProtocol
	if err := req.Decode(&r, "NegotiateProtocol"); err != nil {
		return nil, err
	}
	span.SetAttributes(attribute.String("cid", r.ContainerID))
	if r.MaximumVersion < prot.ProtocolVersion || r.MinimumVersion > prot.ProtocolVersion {
		return nil, prot.Errorf(prot.HrVmcomputeUnsupportedProtocolVersion,
			"protocol version range %d-%d does not include %d", r.MinimumVersion, r.MaximumVersion, prot.ProtocolVersion)
	}
	return &prot.NegotiateProtocolResponse{Version: prot.ProtocolVersion, Capabilities: b.cfg.Capabilities}, nil
}

// isGUID reports whether s looks like a GUID the host can decode.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// frameReader reads the host's request frames off a connection: a header,
// checked before anything is allocated from it, then exactly the body the
// header announces.
type frameReader struct {
	r   *bufio.Reader
	max uint32
	hdr [prot.HeaderSize]byte
}

func newFrameReader(r io.Reader, maxSize uint32) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), max: maxSize}
}

// next returns the next frame. It returns io.EOF when the input ends on a
// frame boundary, an error wrapping ErrBadHeader (with the offending
// header) for a size out of bounds, and another error for a truncated
// frame.
func (fr *frameReader) next() (prot.Header, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return prot.Header{}, nil, io.EOF
		}
		return prot.Header{}, nil, fmt.Errorf("read header: %w", err)
	}
	h := prot.DecodeHeader(fr.hdr[:])
	if err := h.CheckSize(fr.max); err != nil {
		return h, nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	body := make([]byte, h.BodySize())
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			// The input ended right after a header: a truncated frame,
			// not a clean end of the connection.
			err = io.ErrUnexpectedEOF
		}
		return h, nil, fmt.Errorf("read body of %s id %d (%d bytes): %w", h.Type, h.ID, len(body), err)
	}
	return h, body, nil
}
