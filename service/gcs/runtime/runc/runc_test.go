package runc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/cgroup"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/runtime/runc"
)

func TestCreateStartWait(t *testing.T) {
	t.Parallel()
	c := create(t, testutil.Spec("/bin/sh", "-c", "exit 42"), runtime.StdioFiles{})
	if c.Pid() <= 0 || !processExists(c.Pid()) {
		t.Fatalf("init pid %d does not exist", c.Pid())
	}
	st, err := c.State(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != runtime.StatusCreated || st.Pid != c.Pid() || st.ID != c.ID() || st.Bundle != c.Bundle() {
		t.Fatalf("state after create: %+v", st)
	}
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wait(t, c, 42)
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Wait returned")
	}
	if st, err = c.State(ctxT(t)); err != nil || st.Status != runtime.StatusStopped {
		t.Fatalf("state after exit: %+v %v", st, err)
	}
	if err := c.Delete(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Get(c.ID()); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
		t.Fatalf("Get after delete: %v", err)
	}
}

func TestStdioPipes(t *testing.T) {
	t.Parallel()
	p := newPipes(t)
	c := create(t, testutil.Spec("/bin/sh", "-c", "cat; echo to-stderr >&2; exit 3"), p.child)
	p.closeChild()
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.stdin.WriteString("through cat\n"); err != nil {
		t.Fatal(err)
	}
	p.stdin.Close()
	if got := readAll(t, p.stdout); got != "through cat\n" {
		t.Fatalf("stdout %q", got)
	}
	if got := readAll(t, p.stderr); got != "to-stderr\n" {
		t.Fatalf("stderr %q", got)
	}
	wait(t, c, 3)
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	spec := testutil.Spec("/bin/sh", "-c", "tty; stty size; exit 4")
	spec.Process.Terminal = true
	spec.Process.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	c := create(t, spec, runtime.StdioFiles{})
	con := c.Console()
	if con == nil {
		t.Fatal("no console for a terminal container")
	}
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	out := readAll(t, con)
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 101") {
		t.Fatalf("console output %q: want a pts name and size 33 101", out)
	}
	wait(t, c, 4)
}

func TestExec(t *testing.T) {
	t.Parallel()
	c := create(t, testutil.Spec("/bin/sleep", "1000"), runtime.StdioFiles{})
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	t.Run("exit code", func(t *testing.T) {
		proc := testutil.Spec("/bin/sh", "-c", "exit 5").Process
		p, err := c.Exec(ctxT(t), proc, runtime.StdioFiles{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Console() != nil {
			t.Fatal("console without terminal")
		}
		wait(t, p, 5)
		if err := p.Signal(unix.SIGTERM); !errors.Is(err, runtime.ErrProcessDoesNotExist) {
			t.Fatalf("signal after exit: %v", err)
		}
		if h, _ := runtime.HResultOf(p.Signal(unix.SIGTERM)); h != prot.HrErrNotFound {
			t.Fatalf("HRESULT %v", h)
		}
	})

	t.Run("pipes", func(t *testing.T) {
		pp := newPipes(t)
		proc := testutil.Spec("/bin/sh", "-c", "read x; echo got $x; echo $(hostname) >&2").Process
		p, err := c.Exec(ctxT(t), proc, pp.child)
		if err != nil {
			t.Fatal(err)
		}
		pp.closeChild()
		pp.stdin.WriteString("it\n")
		pp.stdin.Close()
		if got := readAll(t, pp.stdout); got != "got it\n" {
			t.Fatalf("stdout %q", got)
		}
		if got := readAll(t, pp.stderr); got != "testutil\n" {
			t.Fatalf("stderr %q (hostname of the container)", got)
		}
		wait(t, p, 0)
	})

	t.Run("signal", func(t *testing.T) {
		p, err := c.Exec(ctxT(t), testutil.Spec("/bin/sleep", "1000").Process, runtime.StdioFiles{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		wait(t, p, 143)
	})

	t.Run("terminal", func(t *testing.T) {
		proc := testutil.Spec("/bin/sh", "-c", "tty; stty size; exit 6").Process
		proc.Terminal = true
		proc.ConsoleSize = &specs.Box{Height: 30, Width: 100}
		p, err := c.Exec(ctxT(t), proc, runtime.StdioFiles{})
		if err != nil {
			t.Fatal(err)
		}
		con := p.Console()
		if con == nil {
			t.Fatal("no console")
		}
		defer con.Close()
		out := readAll(t, con)
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "30 100") {
			t.Fatalf("console output %q", out)
		}
		wait(t, p, 6)
	})

	t.Run("missing binary", func(t *testing.T) {
		_, err := c.Exec(ctxT(t), testutil.Spec("/no/such/binary").Process, runtime.StdioFiles{})
		var rerr *runc.Error
		if !errors.As(err, &rerr) || rerr.Command != "exec" || !strings.Contains(rerr.Message, "no/such/binary") {
			t.Fatalf("exec of a missing binary: %v", err)
		}
	})

	if err := c.Kill(ctxT(t), unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	wait(t, c, 137)
	entries, err := os.ReadDir(filepath.Join(stateDir, c.ID()))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "exec-") {
			t.Errorf("exec state %s left behind", e.Name())
		}
	}
}

func TestKillSignals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sig    unix.Signal
		pidNS  bool
		code   int
		script string
		pidfd  bool // Container.Signal instead of runc kill
	}{
		// An init that is pid 1 of its namespace only receives signals it
		// handles, except SIGKILL; without a pid namespace SIGTERM kills.
		{"sigterm shared pid ns", unix.SIGTERM, false, 143, "exec sleep 1000", false},
		{"sigterm handled", unix.SIGTERM, true, 7, "trap 'exit 7' TERM; while true; do sleep 0.05; done", false},
		{"sigkill", unix.SIGKILL, true, 137, "exec sleep 1000", false},
		{"sigterm handled via pidfd", unix.SIGTERM, true, 7, "trap 'exit 7' TERM; while true; do sleep 0.05; done", true},
		{"sigkill via pidfd", unix.SIGKILL, true, 137, "exec sleep 1000", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := testutil.Spec("/bin/sh", "-c", tc.script)
			if !tc.pidNS {
				spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
					return n.Type == specs.PIDNamespace
				})
			}
			c := create(t, spec, runtime.StdioFiles{})
			if err := c.Start(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if tc.code == 7 {
				// Wait for the trap to be installed: the shell is in its loop.
				eventually(t, "sleep child", func() bool {
					pids, err := c.Ps(ctxT(t))
					return err == nil && len(pids) > 1
				})
			}
			send := func() error { return c.Kill(ctxT(t), tc.sig, false) }
			if tc.pidfd {
				send = func() error { return c.Signal(tc.sig) }
			}
			if err := send(); err != nil {
				t.Fatal(err)
			}
			wait(t, c, tc.code)
			if tc.pidfd {
				if err := c.Signal(tc.sig); !errors.Is(err, runtime.ErrProcessDoesNotExist) {
					t.Fatalf("signal after the init was reaped: %v, want ErrProcessDoesNotExist", err)
				}
			}
		})
	}
}

func TestKillAll(t *testing.T) {
	t.Parallel()
	spec := testutil.Spec("/bin/sh", "-c", "sleep 1000 & exec sleep 1001")
	spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.PIDNamespace
	})
	c := create(t, spec, runtime.StdioFiles{})
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var pids []int
	eventually(t, "two processes", func() bool {
		var err error
		pids, err = c.Ps(ctxT(t))
		return err == nil && len(pids) == 2
	})
	if !slices.Contains(pids, c.Pid()) {
		t.Fatalf("ps %v does not list init %d", pids, c.Pid())
	}
	// runc >= 1.2 signals every process of the container only for SIGKILL
	// without a private pid namespace (through the cgroup); other signals
	// go to the init alone, --all or not.
	if err := c.Kill(ctxT(t), unix.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	wait(t, c, 137)
	for _, pid := range pids {
		// The background sleep was reparented to this process (subreaper)
		// and must be reaped, not left as a zombie.
		eventually(t, "pid "+strconv.Itoa(pid)+" gone", func() bool { return !processExists(pid) })
	}
	if pids, err := c.Ps(ctxT(t)); err != nil || len(pids) != 0 {
		t.Fatalf("ps after kill --all: %v %v", pids, err)
	}
	eventually(t, "no zombie children", func() bool { return len(zombies()) == 0 })
}

func TestDeleteForceRunning(t *testing.T) {
	t.Parallel()
	c := create(t, testutil.Spec("/bin/sleep", "1000"), runtime.StdioFiles{})
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	err := c.Delete(ctxT(t), false)
	if !errors.Is(err, runtime.ErrContainerNotStopped) {
		t.Fatalf("delete of a running container: %v, want ErrContainerNotStopped", err)
	}
	if h, _ := runtime.HResultOf(err); h != prot.HrVmcomputeInvalidState {
		t.Fatalf("HRESULT %v", h)
	}
	if _, err := rt.Get(c.ID()); err != nil {
		t.Fatalf("failed delete forgot the container: %v", err)
	}
	if err := c.Delete(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	wait(t, c, 137)
	if _, err := rt.Get(c.ID()); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
		t.Fatalf("Get after delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(stateDir, c.ID())); !os.IsNotExist(err) {
		t.Fatalf("state dir still there: %v", err)
	}
}

func TestStatePsPauseResume(t *testing.T) {
	t.Parallel()
	c := create(t, testutil.Spec("/bin/sleep", "1000"), runtime.StdioFiles{})
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctxT(t))
	if err != nil || st.Status != runtime.StatusRunning || st.Pid != c.Pid() || st.Created.IsZero() {
		t.Fatalf("state: %+v %v", st, err)
	}
	pids, err := c.Ps(ctxT(t))
	if err != nil || !slices.Equal(pids, []int{c.Pid()}) {
		t.Fatalf("ps: %v %v, want [%d]", pids, err, c.Pid())
	}
	states, err := rt.List(ctxT(t))
	if err != nil || !slices.ContainsFunc(states, func(s runtime.State) bool { return s.ID == c.ID() }) {
		t.Fatalf("list: %+v %v", states, err)
	}

	if err := c.Pause(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctxT(t)); err != nil || st.Status != runtime.StatusPaused {
		t.Fatalf("state after pause: %+v %v", st, err)
	}
	if b, err := os.ReadFile(procStatus(c.Pid())); err != nil || !strings.Contains(string(b), "State:\tD") && !strings.Contains(string(b), "State:\tS") {
		t.Fatalf("paused process status: %s %v", b, err)
	}
	if err := c.Resume(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctxT(t)); err != nil || st.Status != runtime.StatusRunning {
		t.Fatalf("state after resume: %+v %v", st, err)
	}
	if err := c.Resume(ctxT(t)); err == nil {
		t.Fatal("resume of a running container succeeded")
	}
}

func procStatus(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/status" }

// memoryCgroup returns the directory of pid's memory cgroup and the file of
// its limit: the memory controller's on a v1 (or hybrid) host, where runc
// drives v1, the unified one on a pure v2 host.
func memoryCgroup(t *testing.T, pid int) (dir, limitFile string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	v2 := cgroupV2(t)
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" && parts[1] == "" {
			return filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max"
		}
		if !v2 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			return filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
		}
	}
	t.Fatalf("no memory cgroup in %s", b)
	return "", ""
}

// cgroupV2 reports whether /sys/fs/cgroup is a pure cgroup v2 mount.
func cgroupV2(t *testing.T) bool {
	t.Helper()
	mode, err := cgroup.DetectMode(cgroup.DefaultRoot)
	if err != nil {
		t.Fatal(err)
	}
	return mode == cgroup.ModeV2
}

func TestUpdateMemory(t *testing.T) {
	t.Parallel()
	c := create(t, testutil.Spec("/bin/sleep", "1000"), runtime.StdioFiles{})
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	dir, limitFile := memoryCgroup(t, c.Pid())
	if filepath.Base(dir) != cgroupName(c.ID()) {
		t.Fatalf("container in memory cgroup %s, want the spec's", dir)
	}
	limit := int64(48 << 20)
	if err := c.Update(ctxT(t), &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, limitFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(limit, 10) {
		t.Fatalf("%s = %s, want %d", limitFile, got, limit)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()

	t.Run("create twice", func(t *testing.T) {
		t.Parallel()
		spec := testutil.Spec("/bin/true")
		c := create(t, spec, runtime.StdioFiles{})
		_, err := rt.Create(ctxT(t), c.ID(), c.Bundle(), runtime.StdioFiles{})
		if !errors.Is(err, runtime.ErrContainerAlreadyExists) {
			t.Fatalf("second create: %v", err)
		}
		// A second driver on the same runc root does not know the id: runc
		// itself refuses, and its message comes through.
		other, err := runc.New(runc.Options{Binary: runcBin, Root: runcRoot, StateDir: t.TempDir(), Reaper: rp})
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.Create(ctxT(t), c.ID(), c.Bundle(), runtime.StdioFiles{})
		var rerr *runc.Error
		if !errors.Is(err, runtime.ErrContainerAlreadyExists) || !errors.As(err, &rerr) ||
			!strings.Contains(rerr.Message, "already exists") || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create through runc: %v", err)
		}
		if h, _ := runtime.HResultOf(err); h != prot.HrVmcomputeSystemAlreadyExists {
			t.Fatalf("HRESULT %v", h)
		}
		// The failed create must not have harmed the existing container.
		if st, err := c.State(ctxT(t)); err != nil || st.Status != runtime.StatusCreated {
			t.Fatalf("state of the original: %+v %v", st, err)
		}
	})

	t.Run("start of a deleted container", func(t *testing.T) {
		t.Parallel()
		c := create(t, testutil.Spec("/bin/true"), runtime.StdioFiles{})
		if _, err := runcCLI(ctxT(t), "delete", "--force", c.ID()); err != nil {
			t.Fatal(err)
		}
		err := c.Start(ctxT(t))
		var rerr *runc.Error
		if !errors.Is(err, runtime.ErrContainerDoesNotExist) || !errors.As(err, &rerr) || rerr.Message != "container does not exist" {
			t.Fatalf("start: %v", err)
		}
		if h, _ := runtime.HResultOf(err); h != prot.HrVmcomputeSystemNotFound {
			t.Fatalf("HRESULT %v", h)
		}
	})

	t.Run("kill of a stopped container", func(t *testing.T) {
		t.Parallel()
		c := create(t, testutil.Spec("/bin/true"), runtime.StdioFiles{})
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		wait(t, c, 0)
		err := c.Kill(ctxT(t), unix.SIGTERM, false)
		if !errors.Is(err, runtime.ErrContainerNotRunning) || !strings.Contains(err.Error(), "container not running") {
			t.Fatalf("kill: %v", err)
		}
		if h, _ := runtime.HResultOf(err); h != prot.HrVmcomputeSystemAlreadyStopped {
			t.Fatalf("HRESULT %v", h)
		}
		// runc treats kill --all of a stopped container as done.
		if err := c.Kill(ctxT(t), unix.SIGKILL, true); err != nil {
			t.Fatalf("kill --all of a stopped container: %v", err)
		}
	})

	t.Run("start twice", func(t *testing.T) {
		t.Parallel()
		c := create(t, testutil.Spec("/bin/true"), runtime.StdioFiles{})
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		wait(t, c, 0)
		var rerr *runc.Error
		if err := c.Start(ctxT(t)); !errors.As(err, &rerr) || !strings.Contains(rerr.Message, "stopped") {
			t.Fatalf("second start: %v", err)
		}
	})

	t.Run("invalid id", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"", "../x", "a/b", strings.Repeat("x", 77)} {
			_, err := rt.Create(ctxT(t), id, t.TempDir(), runtime.StdioFiles{})
			if !errors.Is(err, runtime.ErrInvalidContainerID) {
				t.Fatalf("create %q: %v", id, err)
			}
			if h, _ := runtime.HResultOf(err); h != prot.HrErrInvalidArg {
				t.Fatalf("HRESULT %v", h)
			}
		}
		if _, err := rt.Get("../x"); !errors.Is(err, runtime.ErrInvalidContainerID) {
			t.Fatalf("get: %v", err)
		}
	})

	t.Run("unknown container", func(t *testing.T) {
		t.Parallel()
		_, err := rt.Get("nosuch")
		if !errors.Is(err, runtime.ErrContainerDoesNotExist) {
			t.Fatalf("get: %v", err)
		}
	})

	t.Run("create of a missing binary", func(t *testing.T) {
		t.Parallel()
		id := newID(t)
		b := bundle(t, id, testutil.Spec("/no/such/binary"))
		t.Cleanup(func() { cleanupContainer(t, id) })
		p := newPipes(t)
		_, err := rt.Create(ctxT(t), id, b, p.child)
		var rerr *runc.Error
		if !errors.As(err, &rerr) || rerr.Command != "create" || !strings.Contains(rerr.Message, "no/such/binary") {
			t.Fatalf("create: %v", err)
		}
		if _, err := rt.Get(id); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
			t.Fatalf("failed create still registered: %v", err)
		}
		if _, err := runcCLI(ctxT(t), "state", id); err == nil {
			t.Fatal("runc still knows the failed container")
		}
		log, err := os.ReadFile(filepath.Join(b, "runc.log"))
		if err != nil || !strings.Contains(string(log), "no/such/binary") {
			t.Fatalf("bundle runc.log: %q %v", log, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		id := newID(t)
		b := bundle(t, id, testutil.Spec("/bin/true"))
		t.Cleanup(func() { cleanupContainer(t, id) })
		if _, err := rt.Create(ctx, id, b, runtime.StdioFiles{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("create with a cancelled context: %v", err)
		}
		if _, err := rt.Get(id); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
			t.Fatalf("cancelled create still registered: %v", err)
		}
	})
}

// runc creates a missing working directory itself (docs/lifecycle.md, "runc
// command lines", has the GCS create <rootfs>/<cwd> first; runc 1.5 no longer
// needs that).
func TestMissingCwd(t *testing.T) {
	t.Parallel()
	p := newPipes(t)
	spec := testutil.Spec("/bin/pwd")
	spec.Process.Cwd = "/not/there/yet"
	c := create(t, spec, p.child)
	p.closeChild()
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, p.stdout); got != "/not/there/yet\n" {
		t.Fatalf("pwd printed %q", got)
	}
	wait(t, c, 0)
}
