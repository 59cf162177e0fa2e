package stdio

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
)

const (
	// DefaultIdleTimeout is how long an output stream may stay silent after
	// the process exited before the relay gives up on it.
	DefaultIdleTimeout = time.Second
	// DefaultHostCloseTimeout bounds the wait for the host to close an
	// output connection after the guest half-closed it.
	DefaultHostCloseTimeout = 10 * time.Second
	// DefaultPipeSize is the capacity requested for output pipes.
	DefaultPipeSize = 1 << 20
)

// Option tunes a relay.
type Option func(*options)

type options struct {
	idle      time.Duration
	hostClose time.Duration
	pipeSize  int
	log       *logrus.Entry
}

func newOptions(opts []Option) options {
	o := options{
		idle:      DefaultIdleTimeout,
		hostClose: DefaultHostCloseTimeout,
		pipeSize:  DefaultPipeSize,
	}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = logging.Discard()
	}
	return o
}

// WithIdleTimeout sets the bounded-drain idle period (default
// DefaultIdleTimeout). Values <= 0 keep the default.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.idle = d
		}
	}
}

// WithHostCloseTimeout bounds the wait for the host's close after an output
// stream was half-closed (default DefaultHostCloseTimeout). Values <= 0 keep
// the default.
func WithHostCloseTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.hostClose = d
		}
	}
}

// WithPipeSize sets the capacity requested (F_SETPIPE_SZ) for the stdout
// and stderr pipes; 0 keeps the kernel default.
func WithPipeSize(n int) Option {
	return func(o *options) { o.pipeSize = n }
}

// WithLogger sets the logger the relay writes to (e.g. one carrying the
// container id and pid fields).
func WithLogger(l *logrus.Entry) Option {
	return func(o *options) { o.log = l }
}
