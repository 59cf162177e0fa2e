// Package runc implements runtime.Runtime by driving the runc binary
// (docs/lifecycle.md, "runc command lines").
//
// Every invocation is `runc --root <Root> --log <tmp> --log-format json
// <command> ...`: the per-call JSON log is parsed after a failure and runc's
// own last error message becomes an *Error that wraps the matching runtime
// sentinel (so runtime.HResultOf picks the HRESULT of docs/protocol.md,
// "HRESULTs"). For create, start, exec and resume the log is also appended to
// <bundle>/runc.log.
//
// All children (runc itself, and the container processes reparented to the
// GCS when runc exits) are started and waited through one reaper.Reaper:
// create and exec take a reaper.Mark before running runc, read the pid file
// runc wrote, and Watch that pid, so an exit reaped before the pid was known
// is not lost.
//
// Terminal processes get a console socket: a unix socket the driver listens
// on in a short-named directory under StateDir; runc connects and sends the
// pty master with SCM_RIGHTS.
//
// State kept by the driver (StateDir, default /var/run/gcsrunc):
//
//	<StateDir>/<id>/init.pid          pid file of runc create
//	<StateDir>/<id>/exec-*/           process.json and pid of one runc exec
//	                                  (removed when runc exec returns)
//	<StateDir>/cs-*/s                 console sockets (removed after use)
//	<StateDir>/runc-*.log             per-call runc logs (removed after use)
//
// <StateDir>/<id> is removed by Container.Delete.
package runc
