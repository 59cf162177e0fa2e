package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

const (
	hostTraceID = "0af7651916cd43dd8448eb211c80319c"
	hostSpanID  = "b7ad6b7169203331"
	traceActID  = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
)

// spanEntries returns the "Span" entries of the gcs's JSON log.
func spanEntries(g *gcstest.GCS) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(g.Log(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "Span" {
			out = append(out, m)
		}
	}
	return out
}

// waitSpan waits until the log holds a span entry matching match.
func waitSpan(t *testing.T, g *gcstest.GCS, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	for {
		for _, e := range spanEntries(g) {
			if match(e) {
				return e
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no span entry for %s in the log; spans: %v", what, spanEntries(g))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestTracePropagation sends requests carrying W3C trace context in
// "otsc", as hcsshim does, and reads the gcs's JSON log: each request has
// a server span "opengcs::bridge::request" that is a child of the host's
// span, with the reference's attributes, and a handler span below it; a
// failed request's spans are logged at error level with the error.
func TestTracePropagation(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{Args: []string{"-log-format", "json"}})
	c := connect(t, g)
	otsc := map[string]string{"traceparent": "00-" + hostTraceID + "-" + hostSpanID + "-01"}

	base := prot.MessageBase{ContainerID: prot.NullContainerID, ActivityID: traceActID, OpenTelemetrySpanContext: otsc}
	if err := c.Call(ctxT(t, 30*time.Second), prot.ComputeSystemDumpStacksV1, &base, &prot.DumpStacksResponse{}); err != nil {
		t.Fatal(err)
	}
	req := waitSpan(t, g, "DumpStacks", func(e map[string]any) bool {
		return e["name"] == "opengcs::bridge::request" && e["message-type"] == prot.ComputeSystemDumpStacksV1.String()
	})
	want := map[string]any{
		"traceID": hostTraceID, "parentSpanID": hostSpanID, "spanKind": "server", "level": "info",
		"activityID": traceActID, "cid": prot.NullContainerID,
		"response-message-type": prot.ResponseFor(prot.ComputeSystemDumpStacksV1).String(),
	}
	for k, v := range want {
		if req[k] != v {
			t.Errorf("request span %s = %v, want %v", k, req[k], v)
		}
	}
	if _, ok := req["message-id"].(float64); !ok {
		t.Errorf("request span has no message-id: %v", req)
	}
	waitSpan(t, g, "the DumpStacks handler", func(e map[string]any) bool {
		return e["name"] == "opengcs::bridge::dumpStacksV2" && e["parentSpanID"] == req["spanID"] && e["traceID"] == hostTraceID
	})

	// A failed request: an error-level span carrying the error.
	sig := prot.ContainerSignalProcess{MessageBase: prot.MessageBase{ContainerID: "no-such-container", ActivityID: traceActID, OpenTelemetrySpanContext: otsc}, ProcessID: 1}
	err := c.Call(ctxT(t, 30*time.Second), prot.ComputeSystemSignalProcessV1, &sig, &prot.MessageResponseBase{})
	if hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		t.Fatalf("signal to an unknown container: %v", err)
	}
	failed := waitSpan(t, g, "SignalProcess", func(e map[string]any) bool {
		return e["name"] == "opengcs::bridge::signalProcessV2" && e["cid"] == "no-such-container"
	})
	if msg, _ := failed["error"].(string); failed["level"] != "error" || !strings.Contains(msg, "not found") || failed["pid"] != float64(1) {
		t.Errorf("failed handler span %v: want level error, the error, pid 1", failed)
	}
}
