// Package initproc is the logic of the utility VM's PID 1 (docs/boot.md,
// "init (PID 1)"): it mounts the early file systems, sets up cgroups, brings
// up loopback, loads the kernel modules the image carries, feeds boot entropy
// from the host, launches the command from its arguments (normally vsockexec
// wrapping the gcs) and reaps every process until that command exits, whose
// status becomes init's.
//
// Test switch: when the kernel command line holds
// opengcs.bridge=virtio-serial (QEMU without AF_VSOCK), init skips the
// vsock entropy port, strips a leading vsockexec wrapper from the command,
// adds -use-inouterr and gives the gcs the virtio-serial port named
// opengcs.bridge as stdin and stdout, with stderr on the console.
//
// Every step takes its paths from a Config with an injectable root so the
// pieces can be exercised in private namespaces on a development machine;
// cmd/init wires it to the real root.
package initproc
