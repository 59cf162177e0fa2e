// Package reaper makes the GCS a child subreaper and owns the reaping of every
// child process.
//
// The GCS is PID 1's only long-lived child and the parent of runc. When
// `runc create` or `runc exec -d` returns, the container process it left
// behind is reparented to the nearest subreaper, which is the GCS; so are the
// orphans of dead pid namespaces. A single Reaper calls wait4(-1, WNOHANG)
// whenever SIGCHLD arrives and hands each exit status to whoever asked for
// that pid. Every exit, claimed or not, is also kept in a bounded history so
// that a pid learned later (a container init read from runc's pid file) can
// still be waited for after it was reaped.
//
// Because the Reaper reaps every child, nothing else in the process may wait
// for children: exec.Cmd.Wait, Run, Output and CombinedOutput race with it
// and fail with ECHILD or lose the status. Use Reaper.Start with Proc.Wait,
// or Reaper.Run / Reaper.Output / Reaper.CombinedOutput instead. There must
// be at most one Reaper per process.
//
// Exit codes follow the GCS rule: the exit status, or 128+signal when the
// process was killed by a signal (Exit.Code).
package reaper
