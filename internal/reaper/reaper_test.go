package reaper_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/reaper"
)

// One Reaper per process: the test binary shares this one.
var rp *reaper.Reaper

func TestMain(m *testing.M) {
	var err error
	rp, err = reaper.New(reaper.Options{HistorySize: 64})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	rp.Close()
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		script string
		code   int
		stdout string
		stderr string
	}{
		{"success", "echo out; echo err >&2", 0, "out\n", "err\n"},
		{"status", "echo bye; exit 3", 3, "bye\n", ""},
		{"sigterm", "kill -TERM $$", 143, "", ""},
		{"sigkill", "kill -KILL $$", 137, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rp.Run(ctxT(t), exec.Command("/bin/sh", "-c", tc.script))
			if got := res.Exit.Code(); got != tc.code {
				t.Fatalf("exit code %d, want %d (%v)", got, tc.code, err)
			}
			var ee *reaper.ExitError
			if tc.code == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.code != 0 && (!errors.As(err, &ee) || ee.Code() != tc.code) {
				t.Fatalf("error %v, want *ExitError with code %d", err, tc.code)
			}
			if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr {
				t.Fatalf("stdout %q stderr %q, want %q %q", res.Stdout, res.Stderr, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestRunStdinAndCombined(t *testing.T) {
	cmd := exec.Command("/bin/cat")
	cmd.Stdin = strings.NewReader("through the pipe")
	res, err := rp.Run(ctxT(t), cmd)
	if err != nil || string(res.Stdout) != "through the pipe" {
		t.Fatalf("cat: %q, %v", res.Stdout, err)
	}

	out, err := rp.CombinedOutput(ctxT(t), exec.Command("/bin/sh", "-c", "echo a; echo b >&2; exit 2"))
	var ee *reaper.ExitError
	if !errors.As(err, &ee) || ee.Code() != 2 || !strings.Contains(ee.Error(), "b") {
		t.Fatalf("want exit 2 carrying output, got %v", err)
	}
	if string(out) != "a\nb\n" {
		t.Fatalf("combined output %q", out)
	}
}

func TestRunFileStdio(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/echo", "to a file")
	cmd.Stdout = f
	if _, err := rp.Run(ctxT(t), cmd); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil || string(b) != "to a file\n" {
		t.Fatalf("file holds %q (%v)", b, err)
	}
}

func TestRunContextKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.Command("/bin/sleep", "1000")
	done := make(chan struct{})
	var res reaper.Result
	var err error
	go func() {
		res, err = rp.Run(ctx, cmd)
		close(done)
	}()
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res.Exit.Code() != 137 && res.Exit.Code() != 0 {
		t.Fatalf("exit %v, want SIGKILL", res.Exit)
	}
	if res.Exit.Pid != 0 && processExists(res.Exit.Pid) {
		t.Fatalf("pid %d still exists", res.Exit.Pid)
	}
}

func TestStartRejectsUnsupportedCommands(t *testing.T) {
	tests := []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"context", exec.CommandContext(context.Background(), "/bin/true")},
		{"writer", func() *exec.Cmd { c := exec.Command("/bin/true"); c.Stdout = &strings.Builder{}; return c }()},
		{"reader", func() *exec.Cmd { c := exec.Command("/bin/true"); c.Stdin = strings.NewReader(""); return c }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rp.Start(tc.cmd); !errors.Is(err, reaper.ErrUnsupportedCmd) {
				t.Fatalf("Start: %v, want ErrUnsupportedCmd", err)
			}
		})
	}
}

func TestStartWaitSignal(t *testing.T) {
	p, err := rp.Start(exec.Command("/bin/sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Exited(); ok {
		t.Fatal("sleep reported exited before being signalled")
	}
	if err := p.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e, err := p.Wait(ctxT(t))
	if err != nil || e.Code() != 143 || e.Pid != p.Pid() {
		t.Fatalf("wait: %v %v", e, err)
	}
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal after exit: %v, want os.ErrProcessDone", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Wait(ctx); err != nil {
		t.Fatalf("wait on a reaped process must not depend on ctx: %v", err)
	}
}

// orphan starts a shell that forks a background subshell, prints its pid and
// exits. The subshell waits for the shell to be gone (so the shell cannot
// reap it and it is reparented to this process), then runs script.
func orphan(t *testing.T, script string) int {
	t.Helper()
	sh := "p=$$; (while kill -0 $p 2>/dev/null; do sleep 0.01; done; " + script + ") </dev/null >/dev/null 2>&1 & echo $!"
	res, err := rp.Run(ctxT(t), exec.Command("/bin/sh", "-c", sh))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// waitGone polls until pid has no /proc entry (so not even a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	ctx := ctxT(t)
	for processExists(pid) {
		select {
		case <-ctx.Done():
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Fatalf("pid %d never went away: %s", pid, stat)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestOrphanIsReapedAndWatchable(t *testing.T) {
	mark := rp.Mark()
	pid := orphan(t, "exit 7")
	waitGone(t, pid) // reaped by the Reaper: no zombie left
	// The Reaper dispatches in reaping order from one goroutine; once a later
	// child's exit is delivered, the orphan's exit is recorded too.
	if _, err := rp.Run(ctxT(t), exec.Command("/bin/true")); err != nil {
		t.Fatal(err)
	}

	p := rp.Watch(pid, mark)
	e, ok := p.Exited()
	if !ok || e.Code() != 7 {
		t.Fatalf("exit reaped before Watch: %v %v, want code 7", e, ok)
	}
	// A mark taken after the exit must not see it: that pid would belong to
	// a newer process.
	late := rp.Watch(pid, rp.Mark())
	if e, ok := late.Exited(); ok {
		t.Fatalf("stale exit delivered: %v", e)
	}
}

func TestWatchBeforeExit(t *testing.T) {
	mark := rp.Mark()
	pid := orphan(t, "exec sleep 1000")
	p := rp.Watch(pid, mark)
	if _, ok := p.Exited(); ok {
		t.Fatal("running orphan reported exited")
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e, err := p.Wait(ctxT(t))
	if err != nil || e.Code() != 137 {
		t.Fatalf("wait: %v %v", e, err)
	}
	waitGone(t, pid)
}

func TestHistoryIsBounded(t *testing.T) {
	mark := rp.Mark()
	first := orphan(t, "exit 5")
	waitGone(t, first)
	if e, err := rp.Watch(first, mark).Wait(ctxT(t)); err != nil || e.Code() != 5 {
		t.Fatalf("orphan exit: %v %v", e, err)
	}
	for i := 0; i < 70; i++ { // more than HistorySize exits
		if _, err := rp.Run(ctxT(t), exec.Command("/bin/true")); err != nil {
			t.Fatal(err)
		}
	}
	if e, ok := rp.Watch(first, mark).Exited(); ok && e.Code() == 5 {
		t.Fatalf("exit outlived the history bound: %v", e)
	}
}

func TestConcurrentRuns(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(code int) {
			defer wg.Done()
			res, _ := rp.Run(ctxT(t), exec.Command("/bin/sh", "-c", fmt.Sprintf("echo %d; exit %d", code, code)))
			if res.Exit.Code() != code || strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(code) {
				errs <- fmt.Errorf("run %d: exit %v stdout %q", code, res.Exit, res.Stdout)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
