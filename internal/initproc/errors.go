package initproc

import "errors"

// Sentinel errors.
var (
	// ErrUsage means init's arguments were invalid.
	ErrUsage = errors.New("init: usage: init [-d shell] [-e port] [-w] command [args...]")
	// ErrNoCgroups means neither cgroup v2 nor any v1 controller could be
	// mounted.
	ErrNoCgroups = errors.New("init: no cgroup controller could be mounted")
	// ErrPortNotFound means the named virtio-serial port never appeared.
	ErrPortNotFound = errors.New("init: virtio-serial port not found")
	// ErrNotFound means a command is not on init's PATH.
	ErrNotFound = errors.New("init: executable not found")
)
