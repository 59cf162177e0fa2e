// Command demo is `make demo`: it starts the real gcs in private mount and
// pid namespaces over the unix transport and drives it like a Windows host
// would — negotiation, diagnostics, an unknown request, a container with
// its output on this terminal, an exec and a tty exec, teardown — and
// finally checks that nothing (mounts, cgroups, processes) is left behind.
//
// It needs root, bin/gcs and bin/runc (`make demo` builds them) and
// Debian's busybox-static (installed by test/setup/deps.sh).
package main
