// Package transport names the ways the GCS reaches the host: AF_VSOCK
// (production), unix sockets named after vsock ports (tests and
// developers, following Firecracker's hybrid-vsock naming), and the
// process's own stdin/stdout (debugging with -use-inouterr).
//
// A Transport only knows how to open a byte stream to or from a numbered
// port. Everything above it (framing, stdio relays, 9p shares) is written
// against net.Conn and never learns which transport is in use.
package transport
