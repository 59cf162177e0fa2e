package logging

import "errors"

// Sentinel errors.
var (
	// ErrFormat is returned for a log format other than text or json.
	ErrFormat = errors.New("log format must be text or json")
	// ErrNotJSON marks a log line that the host's decoder would not take.
	ErrNotJSON = errors.New("log line is not a JSON log entry")
)
