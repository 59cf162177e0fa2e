package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// Request is one decoded incoming request.
type Request struct {
	Type prot.MessageIdentifier
	ID   uint64
	// Body is the raw JSON body; handlers decode it with prot.Decode.
	Body []byte
	// msgBase caches the body's MessageBase (ContainerId and ActivityId,
	// for logging and for echoing ActivityId): taken from the handler's own
	// decode (Decode), or parsed on demand.
	msgBase    prot.MessageBase
	baseParsed bool
	// Version is the protocol version negotiated on the connection the
	// request arrived on.
	Version uint32
}

// Decode unmarshals the body into v (see prot.Decode) and, when v embeds
// prot.MessageBase, remembers it so the body is not parsed twice.
func (r *Request) Decode(v any, what string) error {
	if err := prot.Decode(r.Body, v, what); err != nil {
		return err
	}
	if b, ok := v.(interface{ MessageBaseOf() *prot.MessageBase }); ok {
		r.msgBase, r.baseParsed = *b.MessageBaseOf(), true
	}
	return nil
}

// Base returns the request's MessageBase, parsing the body on a
// best-effort basis if no handler decoded it.
func (r *Request) Base() prot.MessageBase {
	if !r.baseParsed {
		r.baseParsed = true
		_ = json.Unmarshal(r.Body, &r.msgBase)
	}
	return r.msgBase
}

// Handler serves one request type. It returns the response body to send
// (its base is filled in by the bridge) or an error, which becomes a failed
// response carrying the error's HRESULT (prot.Error) or E_FAIL.
type Handler interface {
	ServeRequest(ctx context.Context, req *Request) (prot.Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (prot.Response, error)

// ServeRequest calls f.
func (f HandlerFunc) ServeRequest(ctx context.Context, req *Request) (prot.Response, error) {
	return f(ctx, req)
}

// ErrNoResponse, returned by a handler, means that no response must be
// written at all (ShutdownGraceful/Forced of the utility VM).
var ErrNoResponse = errors.New("request takes no response")

// Mux routes requests by message identifier.
type Mux struct {
	handlers map[prot.MessageIdentifier]Handler
}

// NewMux returns an empty mux.
func NewMux() *Mux { return &Mux{handlers: make(map[prot.MessageIdentifier]Handler)} }

// Handle registers h for id.
func (m *Mux) Handle(id prot.MessageIdentifier, h Handler) { m.handlers[id] = h }

// HandleFunc registers f for id.
func (m *Mux) HandleFunc(id prot.MessageIdentifier, f func(context.Context, *Request) (prot.Response, error)) {
	m.handlers[id] = HandlerFunc(f)
}

// lookup returns the handler for id.
func (m *Mux) lookup(id prot.MessageIdentifier) (Handler, bool) {
	h, ok := m.handlers[id]
	return h, ok
}

// afterResponse carries callbacks run once a request's response has been
// queued for writing.
type afterResponse struct {
	mu  sync.Mutex
	fns []func()
}

type afterKey struct{}

// AfterResponse registers fn to run right after the response of the
// request being handled in ctx has been queued, so that anything fn queues
// (a notification) is written after that response. Outside a request fn
// runs at once.
func AfterResponse(ctx context.Context, fn func()) {
	a, ok := ctx.Value(afterKey{}).(*afterResponse)
	if !ok {
		fn()
		return
	}
	a.mu.Lock()
	a.fns = append(a.fns, fn)
	a.mu.Unlock()
}

func (a *afterResponse) run() {
	a.mu.Lock()
	fns := a.fns
	a.fns = nil
	a.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
