package vm

import "errors"

// Sentinel errors.
var (
	// ErrNoKernel means Debian's generic kernel is not installed.
	ErrNoKernel = errors.New("vm: no /boot/vmlinuz-*-amd64 of Debian's generic kernel (apt-get install linux-image-amd64)")
	// ErrNoQEMU means qemu-system-x86_64 or qboot.rom is missing.
	ErrNoQEMU = errors.New("vm: qemu-system-x86_64 or /usr/share/qemu/qboot.rom missing (apt-get install qemu-system-x86)")
	// ErrNotELF means the vmlinux extracted from a bzImage is not an ELF file.
	ErrNotELF = errors.New("vm: extracted kernel is not an ELF image")
	// ErrExited means QEMU exited before the bridge connected.
	ErrExited = errors.New("vm: qemu exited")
	// ErrQMP is an error reply or an unexpected message from QMP.
	ErrQMP = errors.New("vm: qmp")
	// ErrNotInImage means a program for a test disk needs a library the
	// VM image does not carry.
	ErrNotInImage = errors.New("vm: library missing from the image")
	// ErrGuestCommand means a command run in the guest exited unexpectedly.
	ErrGuestCommand = errors.New("vm: guest command")
)
