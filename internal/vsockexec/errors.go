package vsockexec

import "errors"

// Sentinel errors.
var (
	// ErrUsage means the command line was not valid.
	ErrUsage = errors.New("vsockexec: usage: vsockexec [-r] [-i port] [-o port] [-e port] [-transport spec] program [args...]")
	// ErrNoRelayPort means -r was given without an -o or -e port.
	ErrNoRelayPort = errors.New("vsockexec: relay mode needs an -e or -o port")
	// ErrNoFile means a connection could not be turned into a file
	// descriptor to hand to the program.
	ErrNoFile = errors.New("vsockexec: connection has no file descriptor")
)
