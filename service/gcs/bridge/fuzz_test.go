package bridge_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/tracing"
	"github.com/opengcs/opengcs/service/gcs/bridge"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

const fuzzMaxRequest = 64 << 10

// requestFrames parses data the way a correct reader must: the ids of the
// complete frames in front of the first invalid header or truncated frame.
func requestFrames(data []byte) map[uint64]int {
	ids := map[uint64]int{}
	for len(data) >= prot.HeaderSize {
		h := prot.DecodeHeader(data)
		if h.CheckSize(fuzzMaxRequest) != nil || uint64(len(data)) < uint64(h.Size) {
			break
		}
		ids[h.ID]++
		data = data[h.Size:]
	}
	return ids
}

// FuzzServe feeds arbitrary bytes to the bridge as a connection. The
// bridge must not panic, must not allocate from a size it has not checked,
// must answer each complete frame exactly once (on this connection or
// queued for the next), and must only write frames a host accepts.
func FuzzServe(f *testing.F) {
	for _, seed := range fuzzServeSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newBridge(func(m *bridge.Mux) {
			m.HandleFunc(prot.ComputeSystemStartV1, okHandler)
			m.HandleFunc(prot.ComputeSystemDumpStacksV1, func(_ context.Context, r *bridge.Request) (prot.Response, error) {
				return &prot.DumpStacksResponse{GuestStacks: string(r.Body)}, nil
			})
		}, func(c *bridge.Config) {
			c.MaxRequestSize = fuzzMaxRequest
			// Spans take the host's trace context (otsc) from every frame.
			c.Tracer = tracing.New(quietLog())
		})
		guest, host := socketPair(t)

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan error, 1)
		go func() { done <- b.Serve(context.Background(), guest) }()
		go func() {
			_, _ = host.Write(data)
			_ = host.CloseWrite()
		}()
		got := map[uint64]int{}
		r := bufio.NewReader(host)
		readErr := func() error {
			var hdr [prot.HeaderSize]byte
			for {
				_ = host.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				h := prot.DecodeHeader(hdr[:])
				if err := h.CheckSize(prot.MaxHostMessageSize); err != nil {
					return err
				}
				if h.Type&prot.TypeMask != prot.TypeResponse {
					return errors.New("not a response: " + h.Type.String())
				}
				body := make([]byte, h.BodySize())
				if _, err := io.ReadFull(r, body); err != nil {
					return err
				}
				var base prot.MessageResponseBase
				if err := json.Unmarshal(body, &base); err != nil {
					return err
				}
				got[h.ID]++
			}
		}()
		if readErr != nil {
			t.Fatalf("host side: %v", readErr)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Serve did not return at end of input")
		}
		b.Wait()
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20+256*uint64(len(data)) {
			t.Fatalf("allocated %d bytes for %d bytes of input", grown, len(data))
		}
		want := requestFrames(data)
		total := 0
		for id, n := range got {
			if n > want[id] {
				t.Fatalf("%d responses for id %d, %d requests", n, id, want[id])
			}
			total += n
		}
		sent := 0
		for _, n := range want {
			sent += n
		}
		if total+b.Pending() != sent {
			t.Fatalf("%d requests, %d responses written, %d queued", sent, total, b.Pending())
		}
	})
}

func fuzzServeSeeds(t testing.TB) [][]byte {
	neg := frameBytes(t, prot.ComputeSystemNegotiateProtocolV1, 0, negotiateBody(4, 4))
	start := frameBytes(t, prot.ComputeSystemStartV1, 1, msg("c1"))
	dump := frameBytes(t, prot.ComputeSystemDumpStacksV1, 2, msg(prot.NullContainerID))
	huge := make([]byte, 16)
	prot.Header{Type: prot.ComputeSystemCreateV1, Size: 0xFFFFFFF0, ID: 3}.Encode(huge)
	small := make([]byte, 16)
	prot.Header{Type: prot.ComputeSystemCreateV1, Size: 8, ID: 4}.Encode(small)
	trunc := frameBytes(t, prot.ComputeSystemStartV1, 5, msg("c1"))
	binary.LittleEndian.PutUint32(trunc[4:], uint32(len(trunc)+100))
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return [][]byte{
		nil,
		neg,
		cat(neg, start, dump),
		cat(start, neg, start),
		cat(neg, huge),
		cat(neg, start, small),
		cat(neg, trunc),
		cat(neg, frameBytes(t, 0x1abcdef1, 6, "{")),
		cat(neg, frameBytes(t, prot.ComputeSystemStartV1, 7, "not json"), frameBytes(t, prot.ComputeSystemDumpStacksV1, 7, "<&>")),
		cat(neg, frameBytes(t, prot.ComputeSystemStartV1, 8, `{"ContainerId":"c1","ActivityId":"a","otsc":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v","baggage":"a=b"}}`),
			frameBytes(t, prot.ComputeSystemStartV1, 9, `{"ContainerId":"c1","otsc":{"traceparent":"ff-zz-00-01"}}`),
			frameBytes(t, prot.ComputeSystemStartV1, 10, `{"ContainerId":"c1","otsc":{"traceparent":1}}`)),
	}
}
