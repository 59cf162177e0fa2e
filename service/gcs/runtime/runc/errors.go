package runc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"

	"github.com/opengcs/opengcs/service/gcs/runtime"
)

// ErrNoReaper is returned by New without Options.Reaper.
var ErrNoReaper = errors.New("runc: a reaper is required")

// Error is a failed runc invocation.
type Error struct {
	Command string // runc subcommand: create, start, kill...
	ID      string // container id, if any
	// Message is runc's own error: the last entry at level error or worse in
	// its log, else its standard error, else the exit status.
	Message string
	// Kind is the runtime sentinel Message maps to, or nil.
	Kind error
	// Err is the underlying failure (usually a *reaper.ExitError).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("runc ")
	b.WriteString(e.Command)
	if e.ID != "" {
		b.WriteString(" ")
		b.WriteString(e.ID)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap exposes both the sentinel and the underlying failure.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// classify maps one of runc's error messages to a runtime sentinel (nil if
// none applies). The strings are libcontainer's error texts and runc's
// command-level messages (kill, delete, create).
func classify(msg string) error {
	switch {
	case strings.Contains(msg, "container does not exist"),
		strings.HasPrefix(msg, "container ") && strings.HasSuffix(msg, " does not exist"):
		return runtime.ErrContainerDoesNotExist
	case strings.Contains(msg, "container with given ID already exists"),
		strings.Contains(msg, "container with id exists"):
		return runtime.ErrContainerAlreadyExists
	case strings.Contains(msg, "invalid container ID format"),
		strings.Contains(msg, "invalid id format"):
		return runtime.ErrInvalidContainerID
	case strings.Contains(msg, "container not running"),
		strings.Contains(msg, "is not running"):
		return runtime.ErrContainerNotRunning
	case strings.Contains(msg, "still running"),
		strings.Contains(msg, "that is not stopped"):
		return runtime.ErrContainerNotStopped
	}
	return nil
}

// logEntry is one line of runc's --log-format json output.
type logEntry struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Error string `json:"error"`
}

// lastError returns the message of the last entry at level error, fatal or
// panic in a runc JSON log ("" if there is none).
func lastError(log []byte) string {
	var last string
	dec := json.NewDecoder(bytes.NewReader(log))
	for {
		var e logEntry
		if err := dec.Decode(&e); err != nil {
			break
		}
		switch e.Level {
		case "error", "fatal", "panic":
			last = e.Msg
			if e.Error != "" {
				last += ": " + e.Error
			}
		}
	}
	return last
}

// newError builds the *Error of a failed invocation from its log and stderr.
func newError(command, id string, log, stderr []byte, err error) *Error {
	msg := lastError(log)
	if msg == "" {
		msg = strings.TrimSpace(string(stderr))
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return &Error{Command: command, ID: id, Message: msg, Kind: classify(msg), Err: err}
}

// readLog reads and removes a per-call log file.
func readLog(path string) []byte {
	b, _ := os.ReadFile(path)
	os.Remove(path)
	return b
}
