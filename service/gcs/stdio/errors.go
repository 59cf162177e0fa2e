package stdio

import "errors"

var (
	// ErrMissingPort is returned by Connect when a stream was requested but
	// the host gave no port for it.
	ErrMissingPort = errors.New("stdio stream requested without a port")
	// ErrNoConsole is returned by Resize on a process that has no pty.
	ErrNoConsole = errors.New("process has no console")
	// ErrDrainIdle reports that an output stream was abandoned after the
	// process exited because it stayed silent for the idle period (another
	// process still held it open). Output written before that was relayed.
	ErrDrainIdle = errors.New("output stream idle after process exit")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("relay already started")
	// ErrRelayClosed is returned by Start after Close or Wait.
	ErrRelayClosed = errors.New("relay closed")
	// ErrNoPipe is returned by Start when a connection is given for a stream
	// the relay created no pipe for.
	ErrNoPipe = errors.New("no pipe for stream")
	// ErrUnexpectedData reports bytes sent by the host on an output stream.
	ErrUnexpectedData = errors.New("unexpected data from host on output stream")

	// errNoFd is returned for connections not backed by a descriptor.
	errNoFd = errors.New("connection has no file descriptor")
)
