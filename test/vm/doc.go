// Package vm boots the real utility VM image under QEMU (TCG, q35, qboot,
// the PVH vmlinux of Debian's generic kernel) and drives the gcs inside it
// from the host over a virtio-serial port (AF_VSOCK to the host does not
// exist under TCG here; see docs/vm.md).
//
// The non-test files are the host-side harness: Kernel finds the guest
// kernel, BuildImage compiles init, vsockexec and gcs and writes the
// initrd, and Start runs one QEMU whose bridge port is a unix socket the
// harness listens on.
package vm
