package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/bridge"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

func TestResponseEchoesIDAndActivity(t *testing.T) {
	var got sync.Map
	b := newBridge(func(m *bridge.Mux) {
		for _, id := range []prot.MessageIdentifier{prot.ComputeSystemStartV1, prot.ComputeSystemDeleteContainerStateV1, prot.ComputeSystemGetPropertiesV1} {
			m.HandleFunc(id, func(_ context.Context, r *bridge.Request) (prot.Response, error) {
				got.Store(r.ID, *r)
				return &prot.MessageResponseBase{}, nil
			})
		}
	})
	s := serve(t, b)
	s.negotiate(0)
	tests := []struct {
		typ      prot.MessageIdentifier
		id       uint64
		activity string
		echoed   string
	}{
		{prot.ComputeSystemStartV1, 1, prot.NullActivityID, prot.NullActivityID},
		{prot.ComputeSystemDeleteContainerStateV1, 42, testGUID, testGUID},
		{prot.ComputeSystemGetPropertiesV1, 1 << 40, strings.ToUpper(testGUID), strings.ToUpper(testGUID)},
		{prot.ComputeSystemStartV1, ^uint64(0), "not-a-guid", ""},
		{prot.ComputeSystemStartV1, 7, "", ""},
		{prot.ComputeSystemStartV1, 8, "6a3b2c1d-0000-4000-8000-00155d0a0b0g", ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%d", tc.typ, tc.id), func(t *testing.T) {
			s.send(tc.typ, tc.id, &prot.MessageBase{ContainerID: "c1", ActivityID: tc.activity})
			_, base := s.response(tc.typ, tc.id)
			if base.Result != 0 || base.ActivityID != tc.echoed {
				t.Fatalf("response %+v, want Result 0 and ActivityId %q", base, tc.echoed)
			}
			v, ok := got.Load(tc.id)
			if !ok {
				t.Fatal("handler not called")
			}
			r := v.(bridge.Request)
			if r.Type != tc.typ || r.Base().ContainerID != "c1" || r.Base().ActivityID != tc.activity || r.Version != prot.ProtocolVersion {
				t.Fatalf("handler saw %+v", r)
			}
		})
	}
}

func checkNotImpl(t *testing.T, s *served, typ prot.MessageIdentifier, id uint64) {
	t.Helper()
	f, base := s.response(typ, id)
	if base.Result != prot.HrNotImpl.Int32() {
		t.Fatalf("%s: result %d, want E_NOTIMPL (body %s)", typ, base.Result, f.Body)
	}
	want := []prot.ErrorRecord{{Result: prot.HrNotImpl.Int32(), Message: base.ErrorMessage, ModuleName: "gcs", Line: prot.UnknownLine}}
	if base.ErrorMessage == "" || !reflect.DeepEqual(base.ErrorRecords, want) {
		t.Fatalf("%s: error records %+v", typ, base)
	}
	// Base fields only.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(f.Body, &keys); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		switch k {
		case "Result", "ActivityId", "ErrorMessage", "ErrorRecords":
		default:
			t.Fatalf("%s: unexpected key %q in %s", typ, k, f.Body)
		}
	}
}

var allRequests = []prot.MessageIdentifier{
	prot.ComputeSystemCreateV1, prot.ComputeSystemStartV1, prot.ComputeSystemShutdownGracefulV1,
	prot.ComputeSystemShutdownForcedV1, prot.ComputeSystemExecuteProcessV1, prot.ComputeSystemWaitForProcessV1,
	prot.ComputeSystemSignalProcessV1, prot.ComputeSystemResizeConsoleV1, prot.ComputeSystemGetPropertiesV1,
	prot.ComputeSystemModifySettingsV1, prot.ComputeSystemDumpStacksV1, prot.ComputeSystemDeleteContainerStateV1,
	prot.ComputeSystemUpdateContainerV1, prot.ComputeSystemLifecycleNotifyV1, prot.ComputeServiceModifySettingsV1,
}

// registerAll answers every request type the Linux GCS handles.
func registerAll(calls *atomic.Int64) func(*bridge.Mux) {
	return func(m *bridge.Mux) {
		for _, id := range allRequests[:12] {
			m.HandleFunc(id, func(context.Context, *bridge.Request) (prot.Response, error) {
				calls.Add(1)
				return &prot.MessageResponseBase{}, nil
			})
		}
	}
}

func TestNotImplemented(t *testing.T) {
	t.Run("before negotiation", func(t *testing.T) {
		var calls atomic.Int64
		s := serve(t, newBridge(registerAll(&calls)))
		for i, typ := range append(allRequests, 0x1abcdef1, 0x10101001) {
			s.send(typ, uint64(100+i), msg(prot.NullContainerID))
			checkNotImpl(t, s, typ, uint64(100+i))
		}
		if calls.Load() != 0 {
			t.Fatalf("%d handlers ran before negotiation", calls.Load())
		}
		// The connection is still up and negotiates.
		s.negotiate(1)
	})
	t.Run("after negotiation", func(t *testing.T) {
		var calls atomic.Int64
		s := serve(t, newBridge(registerAll(&calls)))
		s.negotiate(0)
		for i, typ := range allRequests {
			id := uint64(i + 1)
			s.send(typ, id, msg("c1"))
			if i < 12 {
				if _, base := s.response(typ, id); base.Result != 0 {
					t.Fatalf("%s: %+v", typ, base)
				}
				continue
			}
			checkNotImpl(t, s, typ, id)
		}
		for i, typ := range []prot.MessageIdentifier{0x1abcdef1, 0x10100b02, prot.ComputeSystemNegotiateProtocolV1} {
			s.send(typ, uint64(50+i), negotiateBody(4, 4))
			checkNotImpl(t, s, typ, uint64(50+i))
		}
		if calls.Load() != 12 {
			t.Fatalf("%d handler calls, want 12", calls.Load())
		}
	})
	t.Run("without v4", func(t *testing.T) {
		var calls atomic.Int64
		s := serve(t, newBridge(registerAll(&calls), func(c *bridge.Config) { c.EnableV4 = false }))
		s.send(prot.ComputeSystemNegotiateProtocolV1, 0, negotiateBody(4, 4))
		checkNotImpl(t, s, prot.ComputeSystemNegotiateProtocolV1, 0)
		s.send(prot.ComputeSystemStartV1, 1, msg("c1"))
		checkNotImpl(t, s, prot.ComputeSystemStartV1, 1)
		if calls.Load() != 0 {
			t.Fatal("handler ran without v4")
		}
	})
}

func TestNegotiation(t *testing.T) {
	caps := prot.LinuxCapabilities()
	tests := []struct {
		name   string
		body   any
		result prot.HResult
	}{
		{"4-4", negotiateBody(4, 4), prot.HrOK},
		{"1-4", negotiateBody(1, 4), prot.HrOK},
		{"4-9", negotiateBody(4, 9), prot.HrOK},
		{"0-0xffffffff", negotiateBody(0, 0xFFFFFFFF), prot.HrOK},
		{"5-7", negotiateBody(5, 7), prot.HrVmcomputeUnsupportedProtocolVersion},
		{"1-3", negotiateBody(1, 3), prot.HrVmcomputeUnsupportedProtocolVersion},
		{"absent versions", `{"ContainerId":"","ActivityId":"00000000-0000-0000-0000-000000000000"}`, prot.HrVmcomputeUnsupportedProtocolVersion},
		{"invalid JSON", `{"MinimumVersion":4,`, prot.HrVmcomputeInvalidJSON},
		{"version as string", `{"MinimumVersion":"4","MaximumVersion":4}`, prot.HrVmcomputeInvalidJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, newBridge(func(m *bridge.Mux) { m.HandleFunc(prot.ComputeSystemStartV1, okHandler) }))
			s.send(prot.ComputeSystemNegotiateProtocolV1, 9, tc.body)
			f, base := s.response(prot.ComputeSystemNegotiateProtocolV1, 9)
			if base.Result != tc.result.Int32() {
				t.Fatalf("result %d, want %s (%s)", base.Result, tc.result, f.Body)
			}
			s.send(prot.ComputeSystemStartV1, 10, msg("c1"))
			if tc.result != prot.HrOK {
				// Still not negotiated.
				checkNotImpl(t, s, prot.ComputeSystemStartV1, 10)
				return
			}
			var resp prot.NegotiateProtocolResponse
			if err := json.Unmarshal(f.Body, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Version != 4 || !reflect.DeepEqual(resp.Capabilities, caps) {
				t.Fatalf("response %s", f.Body)
			}
			if _, base := s.response(prot.ComputeSystemStartV1, 10); base.Result != 0 {
				t.Fatalf("start after negotiation: %+v", base)
			}
		})
	}
}

// TestNegotiateInline sends a request in the same write as the
// NegotiateProtocol in front of it: it must see the negotiated version.
func TestNegotiateInline(t *testing.T) {
	b := newBridge(func(m *bridge.Mux) { m.HandleFunc(prot.ComputeSystemStartV1, okHandler) })
	for i := 0; i < 20; i++ {
		s := serve(t, b)
		buf := frameBytes(t, prot.ComputeSystemNegotiateProtocolV1, 0, negotiateBody(4, 4))
		buf = append(buf, frameBytes(t, prot.ComputeSystemStartV1, 1, msg("c1"))...)
		s.write(buf)
		if _, base := s.response(prot.ComputeSystemNegotiateProtocolV1, 0); base.Result != 0 {
			t.Fatalf("negotiate: %+v", base)
		}
		if _, base := s.response(prot.ComputeSystemStartV1, 1); base.Result != 0 {
			t.Fatalf("pipelined request: %+v", base)
		}
		s.host.Close()
		if err := s.wait(); !errors.Is(err, io.EOF) {
			t.Fatalf("Serve after host close: %v", err)
		}
	}
}

// TestNegotiationPerConnection: every connection starts un-negotiated.
func TestNegotiationPerConnection(t *testing.T) {
	b := newBridge(func(m *bridge.Mux) { m.HandleFunc(prot.ComputeSystemStartV1, okHandler) })
	s1 := serve(t, b)
	s1.negotiate(0)
	s1.host.Close()
	s1.wait()
	s2 := serve(t, b)
	s2.send(prot.ComputeSystemStartV1, 1, msg("c1"))
	checkNotImpl(t, s2, prot.ComputeSystemStartV1, 1)
	s2.negotiate(2)
	s2.send(prot.ComputeSystemStartV1, 3, msg("c1"))
	if _, base := s2.response(prot.ComputeSystemStartV1, 3); base.Result != 0 {
		t.Fatalf("%+v", base)
	}
}

// TestConcurrentHandlersSingleWriter runs 1000 handlers at once (each
// waits until all have started) with responses of many sizes: every
// response arrives once, whole.
func TestConcurrentHandlersSingleWriter(t *testing.T) {
	const n = 1000
	var started atomic.Int64
	all := make(chan struct{})
	payload := func(id uint64) string {
		return strings.Repeat(string(rune('a'+id%26)), int(100+(id*7919)%30000))
	}
	ctx := testCtx(t, 60e9)
	b := newBridge(func(m *bridge.Mux) {
		m.HandleFunc(prot.ComputeSystemDumpStacksV1, func(_ context.Context, r *bridge.Request) (prot.Response, error) {
			if started.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-ctx.Done():
				return nil, errors.New("not all handlers ran concurrently")
			}
			return &prot.DumpStacksResponse{GuestStacks: payload(r.ID)}, nil
		})
	})
	s := serve(t, b)
	s.negotiate(0)
	go func() {
		var buf []byte
		for id := uint64(1); id <= n; id++ {
			buf = append(buf, frameBytes(t, prot.ComputeSystemDumpStacksV1, id, msg(prot.NullContainerID))...)
		}
		_, _ = s.host.Write(buf)
	}()
	seen := make(map[uint64]bool, n)
	for i := 0; i < n; i++ {
		f := s.read()
		if f.Type != prot.ResponseFor(prot.ComputeSystemDumpStacksV1) || seen[f.ID] || f.ID < 1 || f.ID > n {
			t.Fatalf("frame %d: %s id %d (seen %v)", i, f.Type, f.ID, seen[f.ID])
		}
		seen[f.ID] = true
		var resp prot.DumpStacksResponse
		if err := json.Unmarshal(f.Body, &resp); err != nil {
			t.Fatalf("frame %d (id %d) is not whole: %v", i, f.ID, err)
		}
		if resp.Result != 0 || resp.GuestStacks != payload(f.ID) {
			t.Fatalf("id %d: result %d, %d bytes of stacks", f.ID, resp.Result, len(resp.GuestStacks))
		}
	}
	b.Wait()
	if b.Pending() != 0 {
		t.Fatalf("%d frames still pending", b.Pending())
	}
}

func TestResponseSizeLimit(t *testing.T) {
	// The encoded size of a DumpStacks response without ActivityId.
	overhead := len(`{"Result":0,"GuestStacks":""}`)
	exact := prot.MaxHostMessageSize - prot.HeaderSize - overhead
	tests := []struct {
		name   string
		resp   prot.Response
		err    error
		result prot.HResult
	}{
		{"exactly 64 KiB", &prot.DumpStacksResponse{GuestStacks: strings.Repeat("x", exact)}, nil, prot.HrOK},
		{"one byte over", &prot.DumpStacksResponse{GuestStacks: strings.Repeat("x", exact+1)}, nil, prot.HrFail},
		{"over after HTML escaping", &prot.DumpStacksResponse{GuestStacks: strings.Repeat("<", 20000)}, nil, prot.HrFail},
		{"1 MiB error text keeps its HRESULT", nil, prot.Errorf(prot.HrVmcomputeSystemNotFound, "%s", strings.Repeat("e", 1<<20)), prot.HrVmcomputeSystemNotFound},
		{"escaped error text", nil, prot.Errorf(prot.HrVmcomputeSystemNotFound, "%s", strings.Repeat("&", 1<<20)), prot.HrFail},
		{"invalid UTF-8 error text", nil, errors.New(strings.Repeat("\xff", 100000)), prot.HrFail},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBridge(func(m *bridge.Mux) {
				m.HandleFunc(prot.ComputeSystemDumpStacksV1, func(context.Context, *bridge.Request) (prot.Response, error) {
					return tc.resp, tc.err
				})
			})
			s := serve(t, b)
			s.negotiate(0)
			id := uint64(i + 1)
			s.send(prot.ComputeSystemDumpStacksV1, id, &prot.MessageBase{})
			f, base := s.response(prot.ComputeSystemDumpStacksV1, id) // read checks the 64 KiB limit
			if base.Result != tc.result.Int32() {
				t.Fatalf("result %d, want %s (%.200s)", base.Result, tc.result, f.Body)
			}
			if tc.name == "exactly 64 KiB" && f.Size != prot.MaxHostMessageSize {
				t.Fatalf("size %d", f.Size)
			}
			if tc.result != prot.HrOK && (base.ErrorMessage == "" || len(base.ErrorRecords) != 1) {
				t.Fatalf("error response without message: %.300s", f.Body)
			}
			// The bridge still serves.
			s.send(prot.ComputeSystemNegotiateProtocolV1, 1000, negotiateBody(4, 4))
			checkNotImpl(t, s, prot.ComputeSystemNegotiateProtocolV1, 1000)
		})
	}
}

func TestHandlerPanic(t *testing.T) {
	b := newBridge(func(m *bridge.Mux) {
		m.HandleFunc(prot.ComputeSystemStartV1, func(_ context.Context, r *bridge.Request) (prot.Response, error) {
			if r.Base().ContainerID == "boom" {
				panic("kaboom")
			}
			if r.Base().ContainerID == "nil" {
				var m map[string]int
				m["x"]++ // runtime error
			}
			return &prot.MessageResponseBase{}, nil
		})
	})
	s := serve(t, b)
	s.negotiate(0)
	for i, cid := range []string{"boom", "ok", "nil", "ok"} {
		id := uint64(i + 1)
		s.send(prot.ComputeSystemStartV1, id, msg(cid))
		_, base := s.response(prot.ComputeSystemStartV1, id)
		if cid == "ok" {
			if base.Result != 0 {
				t.Fatalf("after a panic: %+v", base)
			}
			continue
		}
		if base.Result != prot.HrFail.Int32() || !strings.Contains(base.ErrorMessage, "Start") {
			t.Fatalf("panic response %+v", base)
		}
		if cid == "boom" && !strings.Contains(base.ErrorMessage, "kaboom") {
			t.Fatalf("panic value missing: %q", base.ErrorMessage)
		}
	}
}

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		result prot.HResult
		text   string
	}{
		{"plain error is E_FAIL", errors.New("disk on fire"), prot.HrFail, "disk on fire"},
		{"prot.Error", prot.Errorf(prot.HrVmcomputeSystemAlreadyExists, "container %s exists", "c1"), prot.HrVmcomputeSystemAlreadyExists, "container c1 exists"},
		{"wrapped prot.Error", fmt.Errorf("create: %w", prot.NewError(prot.HrErrNotFound, errors.New("pid 7"))), prot.HrErrNotFound, "create: pid 7"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBridge(func(m *bridge.Mux) {
				m.HandleFunc(prot.ComputeSystemExecuteProcessV1, func(context.Context, *bridge.Request) (prot.Response, error) {
					return &prot.ContainerExecuteProcessResponse{ProcessID: 99}, tc.err
				})
			})
			s := serve(t, b)
			s.negotiate(0)
			id := uint64(i + 5)
			s.send(prot.ComputeSystemExecuteProcessV1, id, &prot.MessageBase{ContainerID: "c1", ActivityID: testGUID})
			f, base := s.response(prot.ComputeSystemExecuteProcessV1, id)
			want := prot.MessageResponseBase{
				Result: tc.result.Int32(), ActivityID: testGUID, ErrorMessage: tc.text,
				ErrorRecords: []prot.ErrorRecord{{Result: tc.result.Int32(), Message: tc.text, ModuleName: "gcs", Line: prot.UnknownLine}},
			}
			if !reflect.DeepEqual(base, want) {
				t.Fatalf("got %+v\nwant %+v", base, want)
			}
			if strings.Contains(string(f.Body), "ProcessId") {
				t.Fatalf("failure carries the typed response: %s", f.Body)
			}
		})
	}
}

// TestReconnectQueuesFrames: a notification raised and a response produced
// while no connection is served go out, in order, on the next connection,
// with the response's original id.
func TestReconnectQueuesFrames(t *testing.T) {
	release := make(chan struct{})
	b := newBridge(func(m *bridge.Mux) {
		m.HandleFunc(prot.ComputeSystemWaitForProcessV1, func(context.Context, *bridge.Request) (prot.Response, error) {
			<-release
			return &prot.ContainerWaitForProcessResponse{ExitCode: 137}, nil
		})
	})
	s1 := serve(t, b)
	s1.negotiate(0)
	s1.send(prot.ComputeSystemWaitForProcessV1, 77, &prot.ContainerWaitForProcess{MessageBase: *msg("c1"), ProcessID: 5, TimeoutInMs: prot.InfiniteWaitTimeout})
	s1.host.Close()
	if err := s1.wait(); !errors.Is(err, io.EOF) {
		t.Fatalf("Serve: %v", err)
	}

	n1 := &prot.ContainerNotification{MessageBase: *msg("c1"), Type: prot.NtUnexpectedExit, Operation: prot.AoNone}
	n2 := &prot.ContainerNotification{MessageBase: *msg("c2"), Type: prot.NtForcedExit, Operation: prot.AoNone}
	b.Notify(n1)
	close(release)
	waitFor(t, "the wait response to be queued", func() bool { return b.Pending() == 2 })
	b.Notify(n2)
	b.Wait()

	s2 := serve(t, b)
	checkNote := func(want *prot.ContainerNotification) {
		t.Helper()
		f := s2.read()
		if f.Type != prot.ComputeSystemNotificationV1 {
			t.Fatalf("got %s id %d, want notification for %s", f.Type, f.ID, want.ContainerID)
		}
		var got prot.ContainerNotification
		if err := json.Unmarshal(f.Body, &got); err != nil || !reflect.DeepEqual(&got, want) {
			t.Fatalf("notification %s (%v)", f.Body, err)
		}
	}
	checkNote(n1)
	f, base := s2.response(prot.ComputeSystemWaitForProcessV1, 77)
	var w prot.ContainerWaitForProcessResponse
	if err := json.Unmarshal(f.Body, &w); err != nil || base.Result != 0 || w.ExitCode != 137 {
		t.Fatalf("wait response %s", f.Body)
	}
	checkNote(n2)
	if b.Pending() != 0 {
		t.Fatalf("%d frames left", b.Pending())
	}
	s2.negotiate(78)
}

// TestWriteFailureRequeues: a frame whose write fails stays queued, the
// connection is dropped, and the frame goes out whole on the next one.
func TestWriteFailureRequeues(t *testing.T) {
	b := newBridge(nil)
	s1 := serve(t, b)
	s1.negotiate(0)
	// The host stops reading: the guest's next write fails (EPIPE).
	if err := s1.host.CloseRead(); err != nil {
		t.Fatal(err)
	}
	n := &prot.ContainerNotification{MessageBase: *msg("c9"), Type: prot.NtGracefulExit, Operation: prot.AoNone}
	b.Notify(n)
	err := s1.wait()
	if err == nil || !strings.Contains(err.Error(), "write") {
		t.Fatalf("Serve returned %v, want the write error", err)
	}
	if b.Pending() != 1 {
		t.Fatalf("pending %d, want the notification back in the queue", b.Pending())
	}
	s2 := serve(t, b)
	f := s2.read()
	var got prot.ContainerNotification
	if f.Type != prot.ComputeSystemNotificationV1 || json.Unmarshal(f.Body, &got) != nil || !reflect.DeepEqual(&got, n) {
		t.Fatalf("got %s %s", f.Type, f.Body)
	}
}

// TestAfterResponse: callbacks registered by a handler run after its
// response is queued, also for failures, so what they queue follows it.
func TestAfterResponse(t *testing.T) {
	const n = 200
	var b *bridge.Bridge
	b = newBridge(func(m *bridge.Mux) {
		m.HandleFunc(prot.ComputeSystemWaitForProcessV1, func(ctx context.Context, r *bridge.Request) (prot.Response, error) {
			id := r.ID
			bridge.AfterResponse(ctx, func() {
				b.Notify(&prot.ContainerNotification{MessageBase: *msg(fmt.Sprint(id)), Type: prot.NtUnexpectedExit, Operation: prot.AoNone})
			})
			if id%2 == 0 {
				return nil, prot.Errorf(prot.HrVmcomputeTimeout, "timeout")
			}
			return &prot.ContainerWaitForProcessResponse{ExitCode: uint32(id)}, nil
		})
	})
	s := serve(t, b)
	s.negotiate(0)
	var buf []byte
	for id := uint64(1); id <= n; id++ {
		buf = append(buf, frameBytes(t, prot.ComputeSystemWaitForProcessV1, id, msg("c"))...)
	}
	s.write(buf)
	responded := map[string]bool{}
	notified := 0
	for i := 0; i < 2*n; i++ {
		f := s.read()
		if f.Type == prot.ComputeSystemNotificationV1 {
			var note prot.ContainerNotification
			if err := json.Unmarshal(f.Body, &note); err != nil {
				t.Fatal(err)
			}
			if !responded[note.ContainerID] {
				t.Fatalf("notification for request %s before its response", note.ContainerID)
			}
			notified++
			continue
		}
		responded[fmt.Sprint(f.ID)] = true
	}
	if notified != n || len(responded) != n {
		t.Fatalf("%d notifications, %d responses", notified, len(responded))
	}
	// Outside a request the callback runs at once.
	ran := false
	bridge.AfterResponse(context.Background(), func() { ran = true })
	if !ran {
		t.Fatal("AfterResponse outside a request did not run")
	}
}

// TestNoResponse: a handler returning ErrNoResponse produces no frame.
func TestNoResponse(t *testing.T) {
	b := newBridge(func(m *bridge.Mux) {
		m.HandleFunc(prot.ComputeSystemShutdownForcedV1, func(context.Context, *bridge.Request) (prot.Response, error) {
			return nil, fmt.Errorf("powering off: %w", bridge.ErrNoResponse)
		})
		m.HandleFunc(prot.ComputeSystemStartV1, okHandler)
	})
	s := serve(t, b)
	s.negotiate(0)
	s.send(prot.ComputeSystemShutdownForcedV1, 1, msg(prot.NullContainerID))
	b.Wait()
	s.send(prot.ComputeSystemStartV1, 2, msg("c1"))
	// The next frame is the Start response: nothing was sent for id 1.
	s.response(prot.ComputeSystemStartV1, 2)
}

// TestSequential: requests run one at a time in arrival order, except
// WaitForProcess, which must not block the others.
func TestSequential(t *testing.T) {
	var active, overlaps atomic.Int64
	var mu sync.Mutex
	var order []uint64
	startedFive := make(chan struct{})
	ctx := testCtx(t, 30e9)
	b := newBridge(func(m *bridge.Mux) {
		m.HandleFunc(prot.ComputeSystemStartV1, func(_ context.Context, r *bridge.Request) (prot.Response, error) {
			if active.Add(1) > 1 {
				overlaps.Add(1)
			}
			mu.Lock()
			order = append(order, r.ID)
			mu.Unlock()
			for i := 0; i < 50; i++ {
				runtime.Gosched()
			}
			if r.ID == 5 {
				close(startedFive)
			}
			active.Add(-1)
			return &prot.MessageResponseBase{}, nil
		})
		m.HandleFunc(prot.ComputeSystemWaitForProcessV1, func(context.Context, *bridge.Request) (prot.Response, error) {
			// Only completes once a request behind it has run.
			select {
			case <-startedFive:
				return &prot.ContainerWaitForProcessResponse{ExitCode: 1}, nil
			case <-ctx.Done():
				return nil, errors.New("WaitForProcess blocked the requests behind it")
			}
		})
	}, func(c *bridge.Config) { c.Sequential = true })
	s := serve(t, b)
	s.negotiate(0)
	const n = 100
	var buf []byte
	buf = append(buf, frameBytes(t, prot.ComputeSystemWaitForProcessV1, 1, msg("c"))...)
	for id := uint64(2); id <= n; id++ {
		buf = append(buf, frameBytes(t, prot.ComputeSystemStartV1, id, msg("c"))...)
	}
	s.write(buf)
	var startOrder []uint64
	for i := 0; i < n; i++ {
		f := s.read()
		base := decodeBase(t, f.Body)
		if base.Result != 0 {
			t.Fatalf("id %d: %+v", f.ID, base)
		}
		if f.Type == prot.ResponseFor(prot.ComputeSystemStartV1) {
			startOrder = append(startOrder, f.ID)
		}
	}
	if overlaps.Load() != 0 {
		t.Fatalf("%d requests overlapped in sequential mode", overlaps.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for i, id := range order {
		if id != uint64(i+2) || startOrder[i] != id {
			t.Fatalf("handled in order %v, responses %v", order, startOrder)
		}
	}
}

func TestNotifyWhileConnected(t *testing.T) {
	b := newBridge(nil)
	s := serve(t, b)
	n := &prot.ContainerNotification{MessageBase: *msg("c0ffee"), Type: prot.NtUnexpectedExit, Operation: prot.AoNone}
	b.Notify(n) // before negotiation too: notifications are not gated
	f := s.read()
	want := `{"ContainerId":"c0ffee","ActivityId":"00000000-0000-0000-0000-000000000000","Type":"UnexpectedExit","Operation":"None","Result":0}`
	if f.Type != prot.ComputeSystemNotificationV1 || f.ID != 0 || string(f.Body) != want {
		t.Fatalf("got %s id %d %s", f.Type, f.ID, f.Body)
	}
}

// TestServeEndsWithContext: cancelling Serve's context ends it even while
// it waits for the host.
func TestServeEndsWithContext(t *testing.T) {
	b := newBridge(nil)
	guest, _ := socketPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, guest) }()
	cancel()
	select {
	case <-done:
	case <-testCtx(t, 30e9).Done():
		t.Fatal("Serve did not return after its context ended")
	}
}
