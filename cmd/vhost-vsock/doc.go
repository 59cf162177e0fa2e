// Command vhost-vsock is a vhost-user back-end for QEMU's
// vhost-user-vsock-pci device: it gives a guest AF_VSOCK to the host,
// with the host side as hybrid vsock unix sockets (see docs/vsock.md).
//
//	vhost-vsock -socket /run/vm/vsock.sock -uds /run/vm/vsock -cid 3
//
// It serves one QEMU and exits 0 when QEMU disconnects.
package main
