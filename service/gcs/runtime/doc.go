// Package runtime defines how the GCS drives OCI containers: the Runtime,
// Container and Process interfaces that the host state machine uses, the
// sentinel errors every implementation returns (wrapped, with the runtime's
// own message), HResultOf to turn them into the HRESULT the bridge answers
// with (docs/protocol.md, "HRESULTs"), and ValidateID, the path-safe
// container id rule.
//
// The implementation is service/gcs/runtime/runc, which drives the runc
// binary (docs/lifecycle.md, "runc command lines").
//
// Contracts shared by all implementations:
//
//   - Stdio: the StdioFiles given to Create and Exec are inherited by the
//     container process (nil means /dev/null). The runtime never closes a
//     file it did not open; the caller closes its copies once Create/Exec
//     returned.
//   - Terminal: whether a process gets a pty is decided by the OCI process
//     (config.json's process.terminal for the init, proc.Terminal for Exec).
//     The pty master is returned by Console and belongs to the caller, who
//     relays it, resizes it and closes it; the runtime only closes it itself
//     if Create/Exec fails.
//   - Waiting: Wait returns the exit code (status, or 128+signal) once the
//     process was reaped; any number of callers may wait, and waiting after
//     the exit returns at once. Nothing else is done on exit: killing the
//     rest of the container, relays and notifications belong to the caller.
//   - Errors wrap the sentinels of errors.go; errors.Is works through them.
package runtime
