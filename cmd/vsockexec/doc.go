// Command vsockexec runs a program with its standard streams connected to
// host ports (see internal/vsockexec, whose Main it calls). Its own
// messages are JSON log entries, since its stderr may be the host's log
// port.
//
//	vsockexec [-r] [-i port] [-o port] [-e port] [-transport vsock|unix:<prefix>] program [args...]
package main
