package reaper_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// pidnsEnv marks the copy of the test binary that runs as PID 1 of a private
// PID namespace, where the test can choose which pid the next child gets.
const pidnsEnv = "OPENGCS_REAPER_TEST_PIDNS"

// TestSignalNeverReachesRecycledPid signals a watched process after it has
// gone but before the Reaper heard of its exit (here: another process reaped
// it; in the gcs: a flag set after its output drained), once its pid
// belongs to a new process. The signal must fail with os.ErrProcessDone and
// the new process must not receive it: kill(2) on the pid would SIGKILL it.
func TestSignalNeverReachesRecycledPid(t *testing.T) {
	if os.Getenv(pidnsEnv) == "" {
		// Re-run this test alone as PID 1 of a new PID namespace, so that no
		// other process takes the recycled pid first.
		cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", os.Args[0],
			"-test.run=^TestSignalNeverReachesRecycledPid$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), pidnsEnv+"=1")
		out, err := rp.CombinedOutput(ctxT(t), cmd)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestSignalNeverReachesRecycledPid") {
			t.Fatalf("in a private PID namespace: %v\n%s", err, out)
		}
		return
	}
	if os.Getpid() != 1 {
		t.Fatalf("pid %d, want 1 in the private PID namespace", os.Getpid())
	}
	// A thread the Go runtime (or the race detector) creates, and may end
	// again, between the write to ns_last_pid and the fork can take the pid
	// meant for the new process; then the scenario is played again.
	const attempts = 20
	for attempt := 1; attempt <= attempts; attempt++ {
		if recycledPidScenario(t) {
			return
		}
		t.Logf("attempt %d: the recycled pid went to another task first", attempt)
	}
	t.Fatalf("the new process never got the recycled pid in %d attempts", attempts)
}

// recycledPidScenario plays the test once. It returns false, having checked
// nothing, when a thread of this process took the recycled pid first.
func recycledPidScenario(t *testing.T) bool {
	t.Helper()
	// A shell starts a sleeper, reports its pid and reaps it itself.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	shell := exec.Command("/bin/sh", "-c", "sleep 1000 & echo $!; wait")
	shell.Stdout = pw
	mark := rp.Mark()
	sh, err := rp.Start(shell)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	watched := rp.Watch(pid, mark)

	// The sleeper dies and its parent reaps it: the Reaper never sees it.
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, done := watched.Exited(); done {
		t.Fatal("the Reaper saw an exit it could not have reaped")
	}

	// The next child of this namespace gets the same pid.
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
		t.Fatal(err)
	}
	victim, err := rp.Start(exec.Command("sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if victim.Pid() != pid {
		// Nothing is checked: the victim must hold the recycled pid.
		_ = victim.Signal(syscall.SIGKILL)
		_, _ = victim.Wait(ctxT(t))
		return false
	}

	if err := watched.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal to the gone process: %v, want os.ErrProcessDone", err)
	}
	// A SIGKILL that reached the victim has already decided its exit status
	// (the kernel marks the whole group as exiting when it is sent), so the
	// SIGTERM below shows whether it did.
	if err := victim.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e, err := victim.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Status.Signaled() || e.Status.Signal() != syscall.SIGTERM {
		t.Fatalf("the process that reused pid %d ended with %v: the signal meant for the gone process reached it", pid, e)
	}
	return true
}
