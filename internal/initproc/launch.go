package initproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultPath is the only environment variable launched commands get.
const DefaultPath = "PATH=/sbin:/usr/sbin:/bin:/usr/bin"

// lookPath resolves a command name the way execvpe does with
// DefaultPath, relative to root.
func lookPath(root, name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range strings.Split(strings.TrimPrefix(DefaultPath, "PATH="), ":") {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(filepath.Join(root, p)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNotFound, name)
}

// Launch starts argv in a new session with only DefaultPath in its
// environment and the given descriptors as its stdin, stdout and stderr.
// The caller reaps it (see ReapUntil).
func Launch(root string, argv []string, stdio [3]uintptr) (int, error) {
	path, err := lookPath(root, argv[0])
	if err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   []string{DefaultPath},
		Files: stdio[:],
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	return pid, nil
}

// Reaped describes one process collected by ReapUntil.
type Reaped struct {
	Pid    int
	Status unix.WaitStatus
}

// ExitCode is the status as a shell reports it: the exit code, or 128 +
// the signal number.
func (r Reaped) ExitCode() int {
	if r.Status.Signaled() {
		return 128 + int(r.Status.Signal())
	}
	return r.Status.ExitStatus()
}

// ReapUntil waits for any child (orphans included, since init is their
// parent) until primary exits, calling onOther for every other process
// reaped on the way. It returns the primary's exit code.
func ReapUntil(primary int, onOther func(Reaped)) (int, error) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 1, fmt.Errorf("wait: %w", err)
		}
		r := Reaped{Pid: pid, Status: ws}
		if pid == primary {
			return r.ExitCode(), nil
		}
		if onOther != nil {
			onOther(r)
		}
	}
}
