package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Format names accepted by -log-format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Config is what the command-line flags say about logging.
type Config struct {
	Level  string // -loglevel: a logrus level name
	Format string // -log-format: text or json
	File   string // -logfile: write here instead of Out when set
	// Out receives the log when File is empty (the process's stderr).
	Out io.Writer
}

// New returns the process's logger. The caller owns the file New opens
// for Config.File, which lives as long as the process.
func New(c Config) (*logrus.Logger, error) {
	lvl, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("-loglevel: %w", err)
	}
	f, err := Formatter(c.Format)
	if err != nil {
		return nil, fmt.Errorf("-log-format %q: %w", c.Format, err)
	}
	out := c.Out
	if out == nil {
		out = os.Stderr
	}
	if c.File != "" {
		fh, err := os.OpenFile(c.File, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("-logfile: %w", err)
		}
		out = fh
	}
	l := logrus.New()
	l.SetLevel(lvl)
	l.SetFormatter(f)
	l.SetOutput(out)
	return l, nil
}

// Formatter returns the formatter for a -log-format value.
func Formatter(format string) (logrus.Formatter, error) {
	switch format {
	case FormatText:
		return &logrus.TextFormatter{FullTimestamp: true}, nil
	case FormatJSON:
		return jsonFormatter{}, nil
	}
	return nil, ErrFormat
}

// jsonFormatter is logrus's JSON formatter with nanosecond RFC 3339 times
// (the host orders entries by them) that never fails: when a field value
// cannot be encoded (a NaN, a channel), logrus would print a plain-text
// complaint on the process's stderr, which would end the host's parsing.
// Instead the fields are written as strings.
type jsonFormatter struct{}

func (jsonFormatter) Format(e *logrus.Entry) ([]byte, error) {
	inner := &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
	b, err := inner.Format(e)
	if err == nil {
		return b, nil
	}
	safe := e.Dup()
	safe.Level, safe.Time, safe.Message = e.Level, e.Time, e.Message
	for k, v := range e.Data {
		safe.Data[k] = fmt.Sprintf("%v", v)
	}
	safe.Data["logFormatError"] = err.Error()
	return inner.Format(safe)
}

// Discard returns an entry whose output goes nowhere: the default for
// packages given no logger, and for tests that do not look at logs.
func Discard() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// Or returns e, or a discarding entry when e is nil.
func Or(e *logrus.Entry) *logrus.Entry {
	if e == nil {
		return Discard()
	}
	return e
}

// FormatFromArgs returns the -log-format value among args (json or text,
// text if absent or unreadable). It is for the one message a process
// writes when its flags cannot be parsed, before any logger exists.
func FormatFromArgs(args []string) string {
	format := FormatText
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "log-format" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			i++
			value = args[i]
		}
		if value == FormatJSON || value == FormatText {
			format = value
		}
	}
	return format
}

// Early returns a logger for the messages a process writes before its
// flags have been read: to out, in the format args ask for.
func Early(args []string, out io.Writer) *logrus.Logger {
	l := logrus.New()
	f, _ := Formatter(FormatFromArgs(args))
	l.SetFormatter(f)
	l.SetOutput(out)
	return l
}

// JSON returns a logger writing JSON entries at level and above to out.
func JSON(out io.Writer, level logrus.Level) *logrus.Logger {
	l := logrus.New()
	l.SetFormatter(jsonFormatter{})
	l.SetLevel(level)
	l.SetOutput(out)
	return l
}
