// Command vsockexec runs a program with its standard streams connected to
// host ports (see internal/vsockexec). It is flag parsing and wiring only.
//
//	vsockexec [-r] [-i port] [-o port] [-e port] [-transport vsock|unix:<prefix>] program [args...]
package main
