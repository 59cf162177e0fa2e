// Package stdio connects a process's standard streams to the host.
//
// For every stream the host asked for in ExecuteProcess, the guest dials the
// host's port (Connect) and then relays bytes between that connection and
// the process:
//
//   - PipeRelay: the process gets plain pipes. Host stdin is copied into the
//     stdin pipe (host half-close -> the process reads EOF); stdout and
//     stderr are spliced from their pipes into the connections until EOF,
//     then half-closed so the host sees EOF, and the guest waits for the
//     host to close its end. After the owner reports the process exit, a
//     stream that stays silent for the idle period (a background child
//     still holding the pipe) is abandoned, so Wait always returns.
//   - TtyRelay: the process runs on a pty. Host stdin goes to the master,
//     the master goes to host stdout; EIO on the master marks the end.
//     Resize sets the window size.
//   - ConnectionSet.Files hands the connections themselves to a process that
//     needs no relay (non-pty external processes).
//
// The owner calls Wait before publishing the exit code, so the exit report
// always follows the last byte of output.
package stdio
