package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
)

const (
	hostTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	hostSpan  = "00f067aa0ba902b7"
)

// logged starts a Tracer writing JSON to a buffer and returns a function
// decoding the entries written so far.
func logged(t *testing.T) (*Tracer, func() []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{})
	tr := New(logrus.NewEntry(l).WithField("component", "test"))
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			out = append(out, m)
		}
		return out
	}
}

func TestRequestSpans(t *testing.T) {
	tests := []struct {
		name       string
		carrier    map[string]string
		wantTrace  string
		wantParent string
		err        error
	}{
		{name: "child of the host's span", carrier: map[string]string{"traceparent": "00-" + hostTrace + "-" + hostSpan + "-01"}, wantTrace: hostTrace, wantParent: hostSpan},
		{name: "no context: a new trace"},
		{name: "malformed traceparent: a new trace", carrier: map[string]string{"traceparent": "00-zz-" + hostSpan + "-01"}},
		{name: "failed request", carrier: map[string]string{"traceparent": "00-" + hostTrace + "-" + hostSpan + "-01"}, wantTrace: hostTrace, wantParent: hostSpan, err: errors.New("boom")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, entries := logged(t)
			ctx, span := tr.StartRequest(context.Background(), tc.carrier, attribute.String("cid", "c1"), attribute.Int64("message-id", 7))
			_, child := Start(ctx, "opengcs::bridge::createContainerV2", attribute.Bool("graceful", true))
			SetError(child, tc.err)
			child.End()
			SetError(span, tc.err)
			span.End()

			got := entries()
			if len(got) != 2 {
				t.Fatalf("%d entries, want 2 (child, then request): %v", len(got), got)
			}
			c, r := got[0], got[1]
			for _, e := range got {
				if e["msg"] != SpanMessage || e["component"] != "test" {
					t.Errorf("entry %v: want msg %q and the logger's fields", e, SpanMessage)
				}
				for _, f := range []string{FieldTraceID, FieldSpanID, FieldStartTime, FieldEndTime, FieldDuration} {
					if s, _ := e[f].(string); s == "" {
						t.Errorf("entry %v: no %s", e, f)
					}
				}
				wantLevel := "info"
				if tc.err != nil {
					wantLevel = "error"
					if e["error"] != "boom" || e[FieldErrorCode] != "Error" {
						t.Errorf("failed span %v: want error and errorCode", e)
					}
				}
				if e["level"] != wantLevel {
					t.Errorf("level %v, want %s", e["level"], wantLevel)
				}
			}
			if r[FieldName] != RequestSpan || r[FieldSpanKind] != "server" || r["cid"] != "c1" || r["message-id"] != float64(7) {
				t.Errorf("request span %v", r)
			}
			if tc.wantTrace != "" && r[FieldTraceID] != tc.wantTrace {
				t.Errorf("trace %v, want the host's %s", r[FieldTraceID], tc.wantTrace)
			}
			if tc.wantTrace == "" && r[FieldTraceID] == hostTrace {
				t.Error("took a trace id from a malformed context")
			}
			if p, _ := r[FieldParentSpanID].(string); p != tc.wantParent {
				t.Errorf("request parent %q, want %q", p, tc.wantParent)
			}
			if c[FieldName] != "opengcs::bridge::createContainerV2" || c[FieldParentSpanID] != r[FieldSpanID] || c[FieldTraceID] != r[FieldTraceID] || c["graceful"] != true {
				t.Errorf("child span %v is not below the request span %v", c, r)
			}
			if _, ok := c[FieldSpanKind]; ok {
				t.Errorf("internal span has a kind: %v", c)
			}
		})
	}
}

func TestNotificationSpan(t *testing.T) {
	tr, entries := logged(t)
	_, span := tr.StartNotification(context.Background(), attribute.String("notification", "x"))
	span.End()
	got := entries()
	if len(got) != 1 || got[0][FieldName] != NotificationSpan || got[0][FieldSpanKind] != "client" || got[0]["notification"] != "x" {
		t.Fatalf("notification span: %v", got)
	}
}

// TestStartWithoutTracing: below a context without a span nothing is
// recorded or logged.
func TestStartWithoutTracing(t *testing.T) {
	ctx, span := Start(context.Background(), "x")
	if span.IsRecording() || ctx != context.Background() {
		t.Fatal("a span was started without a request span")
	}
	span.End()
}
