// Package vsockexec starts a program with its standard streams connected to
// host ports (docs/boot.md, "vsockexec"): in the normal mode each requested
// stream is a connection of its own (or shares one when the ports are equal)
// and the program replaces the current process; in relay mode (-r) the
// program's output goes through a pipe that this process copies to a single
// host port, reconnecting and resending whatever was not written when the
// connection breaks.
//
// Connections are opened through a transport.Transport, so the same code
// runs over AF_VSOCK in a utility VM and over unix sockets in tests.
package vsockexec
