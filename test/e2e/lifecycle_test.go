package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

func TestStatisticsAndProcessList(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	e.create(id, e.spec("sh", "-c", "sleep 1000 & sleep 1000"))
	p := e.exec(id, nil, false, false, false)
	var props *prot.PropertiesV2
	// The init's child appears once the shell has forked it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		props, err = e.c.GetProperties(ctxT(t, 30e9), id, prot.PtProcessList, prot.PtStatistics)
		if err != nil {
			t.Fatal(err)
		}
		if len(props.ProcessList) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(props.ProcessList) < 2 {
		t.Fatalf("process list %+v", props.ProcessList)
	}
	var m struct {
		Pids   struct{ Current uint64 } `json:"pids"`
		Memory struct {
			Usage struct{ Usage uint64 } `json:"usage"`
		} `json:"memory"`
		CPU struct {
			Usage struct{ Total uint64 } `json:"usage"`
		} `json:"cpu"`
	}
	if err := json.Unmarshal(props.Metrics, &m); err != nil {
		t.Fatalf("LCOWMetrics %s: %v", props.Metrics, err)
	}
	if m.Pids.Current < 2 || m.Memory.Usage.Usage == 0 || m.CPU.Usage.Total == 0 {
		t.Fatalf("statistics look empty: %s", props.Metrics)
	}
	// The whole response fitted one frame; the client enforces 64 KiB.
	if _, err := e.c.GetProperties(ctxT(t, 30e9), prot.NullContainerID, prot.PtProcessList); hostclient.ResultOf(err) != prot.HrFail {
		t.Fatalf("GetProperties on the UVM: %v", err)
	}
	err := e.c.CallRaw(ctxT(t, 30e9), prot.ComputeSystemGetPropertiesV1, []byte(`{"ContainerId":"`+id+`","Query":"{not json"}`), nil)
	if hostclient.ResultOf(err) != prot.HrVmcomputeInvalidJSON {
		t.Fatalf("bad query: %v", err)
	}
	e.c.Shutdown(ctxT(t, 30e9), id, true)
	e.wait(id, p.pid)
	e.notification(id)
}

func TestExternalProcess(t *testing.T) {
	e := newEnv(t)
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	params := &prot.ProcessParameters{
		CommandLine:      `sh -c 'echo "uvm says $GREETING"; echo oops >&2; exit 4'`,
		WorkingDirectory: "/",
		Environment:      map[string]string{"PATH": "/bin:/usr/bin", "GREETING": "hello"},
		CreateStdOutPipe: true, CreateStdErrPipe: true,
	}
	pid, err := e.c.ExecuteProcess(ctxT(t, 30e9), prot.NullContainerID, params, st.Ports)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Accept(ctxT(t, 30e9)); err != nil {
		t.Fatal(err)
	}
	if out := readAll(t, st, hostclient.StdOut); out != "uvm says hello\n" {
		t.Fatalf("stdout %q", out)
	}
	if out := readAll(t, st, hostclient.StdErr); out != "oops\n" {
		t.Fatalf("stderr %q", out)
	}
	code, err := e.c.WaitForProcess(ctxT(t, 30e9), prot.NullContainerID, pid, prot.InfiniteWaitTimeout)
	if err != nil || code != 4 {
		t.Fatalf("wait: %d, %v", code, err)
	}
	// Still answerable after the first wait; signalling it says it is gone.
	if code, err := e.c.WaitForProcess(ctxT(t, 30e9), prot.NullContainerID, pid, 0); err != nil || code != 4 {
		t.Fatalf("second wait: %d, %v", code, err)
	}
	if err := e.c.SignalProcess(ctxT(t, 30e9), prot.NullContainerID, pid, 9); hostclient.ResultOf(err) != prot.HrErrNotFound {
		t.Fatalf("signal external: %v", err)
	}
	// A signal death is reported as -1 (0xFFFFFFFF).
	st2, _ := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, false, false)
	pid2, err := e.c.ExecuteProcess(ctxT(t, 30e9), prot.NullContainerID, &prot.ProcessParameters{CommandArgs: []string{"sh", "-c", "kill -9 $$"}, Environment: map[string]string{"PATH": "/bin"}}, st2.Ports)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := e.c.WaitForProcess(ctxT(t, 30e9), prot.NullContainerID, pid2, prot.InfiniteWaitTimeout); err != nil || code != 0xFFFFFFFF {
		t.Fatalf("signalled external process: %d, %v", code, err)
	}
	// A missing program is a clear error.
	_, err = e.c.ExecuteProcess(ctxT(t, 30e9), prot.NullContainerID, &prot.ProcessParameters{CommandArgs: []string{"/no/such/program"}}, st2.Ports)
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("missing program: %v", err)
	}
}

func TestBackgroundChildHoldingStdout(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	// The init exits at once, leaving a child with stdout open. Without
	// its own pid namespace nothing kills the child when the init exits
	// except the gcs; the exit must still be reported.
	s := e.spec("sh", "-c", "sleep 600 & echo started; exit 9")
	s.Linux.Namespaces = withoutNamespace(s.Linux.Namespaces, "pid")
	e.create(id, s)
	p := e.exec(id, nil, false, true, false)
	go drain(p.stdio.Conn(hostclient.StdOut))
	if code := e.wait(id, p.pid); code != 9 {
		t.Fatalf("exit code %d", code)
	}
	e.notification(id)

	// The same for an exec'd process whose child keeps stdout open while
	// the container lives on.
	id2 := newID(t)
	e.create(id2, e.spec("sleep", "1000"))
	initp := e.exec(id2, nil, false, false, false)
	ep := e.exec(id2, procArgs("sh", "-c", "sleep 600 & echo x; exit 2"), false, true, false)
	go drain(ep.stdio.Conn(hostclient.StdOut))
	if code := e.wait(id2, ep.pid); code != 2 {
		t.Fatalf("exec exit code %d", code)
	}
	e.c.Shutdown(ctxT(t, 30e9), id2, true)
	e.wait(id2, initp.pid)
	e.notification(id2)
}

func TestParallelContainers(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID(t)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- e.runOnce(ids[i], fmt.Sprintf("echo container %d", i), fmt.Sprintf("container %d\n", i), i%5)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case nt := <-e.c.Notifications():
			if seen[nt.ContainerID] {
				t.Fatalf("duplicate notification for %s", nt.ContainerID)
			}
			seen[nt.ContainerID] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d notifications", len(seen), n)
		}
	}
}

// TestNoLeaksAfterManyLifecycles runs full container lifecycles and checks
// that the gcs holds no more fds, threads, mounts, cgroups or zombies than
// after the first few.
func TestNoLeaksAfterManyLifecycles(t *testing.T) {
	lifecycles := 200
	if testing.Short() {
		lifecycles = 30
	}
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		if err := e.runFull(newID(t)); err != nil {
			t.Fatal(err)
		}
	}
	before := e.snapshot()
	for i := 0; i < lifecycles; i++ {
		if err := e.runFull(newID(t)); err != nil {
			t.Fatalf("lifecycle %d: %v", i, err)
		}
	}
	after := e.snapshot()
	t.Logf("before %+v after %+v", before, after)
	if after.fds > before.fds+2 || after.threads > before.threads+4 || after.mounts != before.mounts ||
		after.cgroups != before.cgroups || after.zombies > 0 {
		t.Fatalf("leak: before %+v after %+v", before, after)
	}
}

type snapshot struct{ fds, threads, mounts, cgroups, zombies int }

func (e *env) snapshot() snapshot {
	e.t.Helper()
	pid, err := e.g.Pid()
	if err != nil {
		e.t.Fatal(err)
	}
	var s snapshot
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.fds = len(fds)
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	s.threads = len(tasks)
	mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	s.mounts = strings.Count(string(mi), "\n")
	_ = filepath.WalkDir(e.cgroupDir("memory", "/"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			s.cgroups++
		}
		return nil
	})
	if s.cgroups == 0 {
		// At least the prefix, /gcs and /pods: a count of 0 is a wrong path.
		e.t.Fatalf("no cgroup found under %s", e.cgroupDir("memory", "/"))
	}
	// Zombies anywhere in the gcs's pid namespace are children it failed to
	// reap.
	procs, _ := os.ReadDir("/proc")
	myNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		if ns, _ := os.Readlink("/proc/" + p.Name() + "/ns/pid"); ns != myNS {
			continue
		}
		if st, err := os.ReadFile("/proc/" + p.Name() + "/stat"); err == nil {
			f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
			if len(f) > 0 && f[0] == "Z" {
				s.zombies++
			}
		}
	}
	return s
}

// drain reads a stream to EOF and closes it, as a host does.
func drain(c io.ReadCloser) {
	_, _ = io.Copy(io.Discard, c)
	c.Close()
}

// externalConsole starts script as a utility VM process with a terminal,
// stdin and stdout (as shimdiag exec -t does) and accepts its stdio.
func externalConsole(ctx context.Context, t *testing.T, e *env, script string) (*hostclient.Stdio, uint32) {
	t.Helper()
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	params := &prot.ProcessParameters{
		CommandArgs:     []string{"sh", "-c", script},
		Environment:     map[string]string{"PATH": "/bin:/usr/bin"},
		EmulateConsole:  true,
		CreateStdInPipe: true, CreateStdOutPipe: true,
	}
	pid, err := e.c.ExecuteProcess(ctx, prot.NullContainerID, params, st.Ports)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	return st, pid
}

func TestExternalProcessWithConsole(t *testing.T) {
	e := newEnv(t)
	st, pid := externalConsole(ctxT(t, 30e9), t, e, "tty; read line; echo got $line; exit 3")
	if _, err := io.WriteString(st.Conn(hostclient.StdIn), "ping\n"); err != nil {
		t.Fatal(err)
	}
	out := readAll(t, st, hostclient.StdOut)
	mustContain(t, out, "/dev/pts/")
	mustContain(t, out, "got ping")
	code, err := e.c.WaitForProcess(ctxT(t, 30e9), prot.NullContainerID, pid, prot.InfiniteWaitTimeout)
	if err != nil || code != 3 {
		t.Fatalf("wait: %d, %v", code, err)
	}
}
