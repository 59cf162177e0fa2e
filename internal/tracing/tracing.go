package tracing

import (
	"context"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span names and the instrumentation name the reference uses.
const (
	// TracerName is the instrumentation scope of every span.
	TracerName = "opengcs"
	// RequestSpan is the server span of one bridge request.
	RequestSpan = "opengcs::bridge::request"
	// NotificationSpan is the client span of one container notification.
	NotificationSpan = "opengcs::bridge::PublishNotification"
)

// Tracer starts the spans of bridge requests and exports them to a log.
type Tracer struct {
	provider   *sdktrace.TracerProvider
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// New returns a Tracer whose spans are written to log when they end.
func New(log *logrus.Entry) *Tracer {
	p := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(NewExporter(log)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	return &Tracer{
		provider:   p,
		tracer:     p.Tracer(TracerName),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// Shutdown flushes and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// StartRequest starts the server span of a request whose trace-context
// carrier (the "otsc" map, possibly empty) is carrier: a child of the
// host's span when the carrier holds a valid traceparent, else a new
// trace.
func (t *Tracer) StartRequest(ctx context.Context, carrier map[string]string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if len(carrier) > 0 {
		ctx = t.propagator.Extract(ctx, propagation.MapCarrier(carrier))
	}
	return t.tracer.Start(ctx, RequestSpan, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// StartNotification starts the client span of a notification sent to the
// host.
func (t *Tracer) StartNotification(ctx context.Context, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, NotificationSpan, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// Start starts a child of the span in ctx, from the same provider. With
// no recording span in ctx (tracing off) it returns a span that does
// nothing.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(TracerName).Start(ctx, name, trace.WithAttributes(attrs...))
}

// SetError records err on span and marks it failed; a nil err leaves the
// status unset (which the exporter treats as success).
func SetError(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
