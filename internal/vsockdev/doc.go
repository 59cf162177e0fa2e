// Package vsockdev is a virtio-vsock device for a vhost-user back-end:
// it moves stream connections between the guest's rx/tx virtqueues and
// unix sockets on the host, with the virtio-vsock packet protocol
// (request, response, rw, credit update and request, shutdown, rst) and
// credit-based flow control in both directions.
//
// The host side is "hybrid vsock", Firecracker's convention and the one
// the gcs's -transport unix:<prefix> uses: a guest connection to CID 2
// port N is connected to the unix socket <prefix>_<N> (and reset when
// nothing listens there), and a host process opens a connection into the
// guest by connecting to <prefix>, writing "CONNECT <port>\n" and reading
// "OK <host port>\n" once the guest has accepted.
//
// Packet layouts follow the virtio specification's "Socket Device"
// section. Packets from the guest are untrusted: malformed ones are
// logged and dropped, or answered with a reset.
package vsockdev
