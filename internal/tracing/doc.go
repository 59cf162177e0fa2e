// Package tracing gives every bridge request an OpenTelemetry span that is
// a child of the host's trace, and writes finished spans to the gcs's log
// stream, as the reference guest does.
//
// The host puts W3C trace context (traceparent, tracestate, and baggage)
// in the "otsc" map of each request (upstream
// internal/guest/prot/protocol.go, MessageBase); the reference extracts it
// and starts a server span "opengcs::bridge::request" per request, with
// child spans per handler (upstream internal/guest/bridge/bridge.go and
// bridge_v2.go). Its exporter writes each span as one log entry with the
// message "Span" (upstream internal/ot/exporter.go): the span's
// attributes, name, traceID, spanID, parentSpanID, startTime, endTime,
// duration and spanKind, at info level, or at error level with error and
// errorCode for a span whose status is an error. Spans are exported
// synchronously and always sampled, as there (upstream cmd/gcs/main.go).
//
// Nothing here is global: a Tracer is built from the logger handed down
// by cmd/gcs, and code below the bridge starts child spans from the span
// in its context (Start), so a request without a Tracer costs nothing.
package tracing
