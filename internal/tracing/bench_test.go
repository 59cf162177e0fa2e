package tracing

import (
	"context"
	"io"
	"testing"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
)

// BenchmarkRequestSpans is the tracing work of one request: the request
// span from a host traceparent, one handler span, both exported as JSON
// log entries (to io.Discard).
func BenchmarkRequestSpans(b *testing.B) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetFormatter(&logrus.JSONFormatter{})
	tr := New(logrus.NewEntry(l))
	carrier := map[string]string{"traceparent": "00-" + hostTrace + "-" + hostSpan + "-01"}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rctx, span := tr.StartRequest(ctx, carrier, attribute.Int64("message-id", 1), attribute.String("message-type", "Start"),
			attribute.String("activityID", "x"), attribute.String("cid", "c"))
		_, child := Start(rctx, "opengcs::bridge::startContainerV2")
		child.SetAttributes(attribute.String("cid", "c"))
		child.End()
		span.SetAttributes(attribute.String("response-message-type", "StartResponse"))
		span.End()
	}
}
