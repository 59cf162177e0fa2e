// Package command names the one way packages run helper programs (mkfs,
// udhcpc, chronyd...) to completion: a Runner. Inside the gcs the Runner is
// the process-wide child reaper (internal/reaper), because a wait4(-1)
// reaper would otherwise steal the exit status that os/exec waits for.
// Plain is the Runner for processes that have no reaper (tests, tools).
package command
