package stdio

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// recordingTransport records the order of dials on a real transport.
type recordingTransport struct {
	transport.Transport
	mu    sync.Mutex
	dials []uint32
}

func (r *recordingTransport) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	r.mu.Lock()
	r.dials = append(r.dials, port)
	r.mu.Unlock()
	return r.Transport.Dial(ctx, port)
}

func TestConnectStreams(t *testing.T) {
	tests := []struct {
		name    string
		want    Streams
		listen  Streams // ports the host gives (and listens on)
		wantSet Streams
		wantErr error
	}{
		{"all", AllStreams(), AllStreams(), AllStreams(), nil},
		{"none", Streams{}, Streams{}, Streams{}, nil},
		{"stderr only", Streams{Stderr: true}, Streams{Stderr: true}, Streams{Stderr: true}, nil},
		{"tty in+out", Streams{Stdin: true, Stdout: true}, Streams{Stdin: true, Stdout: true}, Streams{Stdin: true, Stdout: true}, nil},
		{"port without flag is ignored", Streams{Stdout: true}, Streams{Stdin: true, Stdout: true}, Streams{Stdout: true}, nil},
		{"flag without port fails", Streams{Stdin: true, Stdout: true}, Streams{Stdin: true}, Streams{}, ErrMissingPort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			rec := &recordingTransport{Transport: h.tr}
			var ports prot.ExecuteProcessVsockStdioRelaySettings
			var order []uint32
			accepted := map[uint32]<-chan *net.UnixConn{}
			for _, s := range []struct {
				on   bool
				port *uint32
			}{{tc.listen.Stdin, &ports.StdIn}, {tc.listen.Stdout, &ports.StdOut}, {tc.listen.Stderr, &ports.StdErr}} {
				if s.on {
					p, ch := h.listen()
					*s.port = p
					accepted[p] = ch
				}
			}
			for _, s := range []struct {
				on   bool
				port uint32
			}{{tc.want.Stdin, ports.StdIn}, {tc.want.Stdout, ports.StdOut}, {tc.want.Stderr, ports.StdErr}} {
				if s.on && s.port != 0 {
					order = append(order, s.port)
				}
			}
			set, err := Connect(context.Background(), logging.Discard(), rec, ports, tc.want)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Connect error = %v, want %v", err, tc.wantErr)
				}
				var pe *prot.Error
				if !errors.As(err, &pe) || pe.Result != prot.HrErrInvalidArg {
					t.Fatalf("Connect error %v carries no E_INVALIDARG", err)
				}
				// The stdin connection dialled before the failure is closed:
				// the host reads EOF on it.
				c := recv(t, accepted[ports.StdIn], "stdin accept")
				_ = c.SetReadDeadline(time.Now().Add(guard))
				if n, rerr := c.Read(make([]byte, 1)); n != 0 || rerr != io.EOF {
					t.Fatalf("host stdin read = %d, %v; want EOF", n, rerr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer set.Close()
			if got := set.Streams(); got != tc.wantSet {
				t.Fatalf("connected streams = %+v, want %+v", got, tc.wantSet)
			}
			rec.mu.Lock()
			dials := append([]uint32(nil), rec.dials...)
			rec.mu.Unlock()
			if len(dials) != len(order) {
				t.Fatalf("dials = %v, want %v", dials, order)
			}
			for i := range order {
				if dials[i] != order[i] {
					t.Fatalf("dials = %v, want order %v", dials, order)
				}
			}
		})
	}
}

func TestConnectFailureClosesOpened(t *testing.T) {
	h := newTestHost(t)
	inPort, inCh := h.listen()
	outPort, outCh := h.listen()
	missing := h.next // nobody listens here
	h.next++

	// Warm up lazily opened runtime descriptors (netpoll) before counting.
	warm, _ := h.connect(Streams{Stdout: true})
	warm.Close()

	before := fdCount(t)
	_, err := Connect(context.Background(), logging.Discard(), h.tr, prot.ExecuteProcessVsockStdioRelaySettings{
		StdIn: inPort, StdOut: outPort, StdErr: missing,
	}, AllStreams())
	if err == nil {
		t.Fatal("Connect succeeded with a missing stderr port")
	}
	// Both opened connections were closed: the host sees EOF on each.
	for name, ch := range map[string]<-chan *net.UnixConn{"stdin": inCh, "stdout": outCh} {
		c := recv(t, ch, name+" accept")
		_ = c.SetReadDeadline(time.Now().Add(guard))
		if n, rerr := c.Read(make([]byte, 1)); n != 0 || rerr != io.EOF {
			t.Fatalf("host %s read = %d, %v; want EOF", name, n, rerr)
		}
		c.Close()
	}
	// The two host listeners closed themselves after their accept and the
	// host closed its accepted ends, so the GCS side must hold nothing.
	if after := fdCount(t); after != before-2 {
		t.Fatalf("descriptors: %d before, %d after a failed Connect (want %d)", before, after, before-2)
	}
}

func TestStreamsOf(t *testing.T) {
	p := &prot.ProcessParameters{CreateStdInPipe: true, CreateStdErrPipe: true}
	if got := StreamsOf(p); got != (Streams{Stdin: true, Stderr: true}) {
		t.Fatalf("StreamsOf = %+v", got)
	}
	if got := StreamsOf(nil); got != (Streams{}) {
		t.Fatalf("StreamsOf(nil) = %+v", got)
	}
}
