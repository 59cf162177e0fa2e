package kmsg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
)

// DefaultPath is the kernel log device.
const DefaultPath = "/dev/kmsg"

// bufferSize is larger than any record the kernel hands out in one read.
const bufferSize = 128 << 10

// Forwarder logs kernel records at or below Level.
type Forwarder struct {
	// Level is the least severe priority forwarded (-kmsgLogLevel;
	// Warning by default in the GCS).
	Level Priority
	// Log receives the records; nil discards them.
	Log *logrus.Entry
}

// Fields are the log fields of a forwarded record.
func (r Record) Fields() logrus.Fields {
	return logrus.Fields{
		"priority":           r.Priority.String(),
		"facility":           r.Facility,
		"seq":                r.Seq,
		"timesincebootmicro": r.TimeSinceBootMicro,
		"flags":              r.Flags,
		"message":            r.Message,
	}
}

// Run reads records from r, which must return one record per Read like
// /dev/kmsg, until ctx ends or a read fails. EPIPE (records overwritten
// before they were read) is logged and reading continues; unparsable
// records are logged as errors and skipped. Records at or below f.Level
// are logged at info level. It returns ctx's error when ctx ended the
// reading, else the read error (io.EOF for a reader that ran dry).
func (f *Forwarder) Run(ctx context.Context, r io.Reader) error {
	log := f.Log
	if log == nil {
		log = logging.Discard()
	}
	buf := make([]byte, bufferSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.EPIPE) {
				log.Warn("kmsg records overwritten before they were read; skipping")
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read kmsg: %w", err)
		}
		rec, err := Parse(buf[:n])
		if err != nil {
			log.WithError(err).WithField("line", string(buf[:n])).Error("failed to parse kmsg record")
			continue
		}
		if rec.Priority <= f.Level {
			log.WithFields(rec.Fields()).Info("kmsg read")
		}
	}
}

// ReadFile opens path (DefaultPath in the GCS) and forwards its records
// until ctx ends or reading fails. Cancelling ctx closes the device, which
// wakes a pending read.
func (f *Forwarder) ReadFile(ctx context.Context, path string) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open kmsg: %w", err)
	}
	defer file.Close()
	stop := context.AfterFunc(ctx, func() { file.Close() })
	defer stop()
	return f.Run(ctx, file)
}
