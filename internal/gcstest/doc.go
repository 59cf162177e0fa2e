// Package gcstest starts the real gcs binary for black-box tests and the
// demo: in a private mount namespace with its own /run and /proc, in its
// own PID namespace (so a VM power-off request only ends that namespace),
// speaking the bridge over the unix transport to a host-side listener
// owned by the test.
package gcstest
