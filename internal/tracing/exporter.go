package tracing

import (
	"context"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Log entry fields of an exported span (upstream internal/logfields).
const (
	FieldName         = "name"
	FieldTraceID      = "traceID"
	FieldSpanID       = "spanID"
	FieldParentSpanID = "parentSpanID"
	FieldStartTime    = "startTime"
	FieldEndTime      = "endTime"
	FieldDuration     = "duration"
	FieldSpanKind     = "spanKind"
	FieldErrorCode    = "errorCode"
	// SpanMessage is the message of every span entry.
	SpanMessage = "Span"
	// TimeFormat is RFC 3339 with nanoseconds always nine digits long.
	TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"
)

// Exporter writes each finished span as one log entry.
type Exporter struct {
	log *logrus.Entry
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// NewExporter returns an exporter writing to log.
func NewExporter(log *logrus.Entry) *Exporter { return &Exporter{log: log} }

// ExportSpans logs each span: its attributes, identity, times and kind, at
// info level, or at error level with the status description as the error
// when the span failed. The entry's time is the span's start.
func (e *Exporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		attrs := s.Attributes()
		data := make(logrus.Fields, len(e.log.Data)+len(attrs)+10)
		for k, v := range e.log.Data {
			data[k] = v
		}
		for _, a := range attrs {
			data[string(a.Key)] = a.Value.AsInterface()
		}
		sc := s.SpanContext()
		data[FieldName] = s.Name()
		data[FieldTraceID] = sc.TraceID().String()
		data[FieldSpanID] = sc.SpanID().String()
		if s.Parent().IsValid() {
			data[FieldParentSpanID] = s.Parent().SpanID().String()
		}
		data[FieldStartTime] = s.StartTime().Format(TimeFormat)
		data[FieldEndTime] = s.EndTime().Format(TimeFormat)
		data[FieldDuration] = s.EndTime().Sub(s.StartTime()).String()
		switch s.SpanKind() {
		case trace.SpanKindServer:
			data[FieldSpanKind] = "server"
		case trace.SpanKindClient:
			data[FieldSpanKind] = "client"
		}
		level := logrus.InfoLevel
		if st := s.Status(); st.Code == codes.Error {
			level = logrus.ErrorLevel
			if _, ok := data[logrus.ErrorKey]; !ok {
				data[logrus.ErrorKey] = st.Description
			}
			if _, ok := data[FieldErrorCode]; !ok {
				data[FieldErrorCode] = st.Code.String()
			}
		}
		entry := logrus.NewEntry(e.log.Logger)
		entry.Data = data
		entry.Time = s.StartTime()
		entry.Log(level, SpanMessage)
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter; there is nothing to flush.
func (e *Exporter) Shutdown(context.Context) error { return nil }
