// Command demo is `make demo`: it starts the real gcs in private mount and
// PID namespaces over the unix transport and drives it through the
// host-side client the way a Windows host would, printing what a host
// sees: negotiation, a stack dump, an unknown request, a container with
// its output, exit code and notification, an exec and a tty exec, and the
// teardown.
package main
