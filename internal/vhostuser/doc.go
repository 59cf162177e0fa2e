// Package vhostuser speaks the back-end side of QEMU's vhost-user protocol
// on a unix socket: message framing with file descriptors passed as
// SCM_RIGHTS, feature and protocol-feature negotiation, the device
// configuration space, the guest memory table (each region's fd mmap'ed
// shared) and the per-ring set-up messages. It knows nothing about a
// particular device: a Device receives the negotiated rings and memory.
//
// The message layouts follow QEMU's docs/interop/vhost-user.rst.
package vhostuser
