package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// unknownRequest is a message identifier no peer defines.
const unknownRequest prot.MessageIdentifier = 0x10107701

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n▶ "+format+"\n", args...) }
func note(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("run me as root (mount and pid namespaces, runc)")
	}
	dir, err := os.MkdirTemp("", "opengcs-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	layer := filepath.Join(dir, "busybox-layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		return err
	}

	fmt.Println("opengcs demo: the guest compute service, driven like a Windows host drives it")
	g, err := gcstest.StartDir(dir, gcstest.Options{Args: []string{"-loglevel", "info"}})
	if err != nil {
		return fmt.Errorf("start gcs: %w", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			g.Stop()
		}
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := g.Accept(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	pid, _ := g.Pid()
	note("gcs pid %d (outside view), private mount+pid namespaces, own /run", pid)
	note("bridge: unix socket %s_%d (stands in for AF_VSOCK)", g.Transport.Prefix, 0x40000000)

	step("NegotiateProtocol")
	resp, err := c.Negotiate(ctx)
	if err != nil {
		return err
	}
	caps, _ := json.Marshal(resp.Capabilities)
	note("protocol version %d", resp.Version)
	note("capabilities %s", caps)

	step("DumpStacks")
	stacks, err := c.DumpStacks(ctx)
	if err != nil {
		return err
	}
	note("%d goroutines, %d bytes of stacks", strings.Count(stacks, "goroutine "), len(stacks))

	step("unknown request 0x%08x", uint32(unknownRequest))
	req := prot.MessageBase{ContainerID: prot.NullContainerID, ActivityID: prot.NullActivityID}
	err = c.Call(ctx, unknownRequest, &req, &prot.MessageResponseBase{})
	if hr := hostclient.ResultOf(err); hr != prot.HrNotImpl {
		return fmt.Errorf("unknown request answered with %v", err)
	}
	if _, err := c.DumpStacks(ctx); err != nil {
		return fmt.Errorf("bridge unusable after the unknown request: %w", err)
	}
	note("answered E_NOTIMPL (%s); the bridge carries on", prot.HrNotImpl)

	id := fmt.Sprintf("demo%012x", time.Now().UnixNano()&0xffffffffffff)
	bundle := "/run/gcs/c/" + id
	rootfs, scratch := bundle+"/rootfs", bundle+"/scratch/"+id
	step("ModifySettings: CombinedLayers Add")
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfs, Layers: []prot.Layer{{Path: layer}}, ScratchPath: scratch}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		return err
	}
	note("busybox layer + scratch -> overlay at %s", rootfs)

	step("container %s: Create, Start, init with stdin/stdout/stderr", id)
	s := testutil.Spec("sh", "-c", `echo "hello from the container, hostname $(hostname), pid $$"; read line; echo "init read: $line"; exit 3`)
	s.Hostname = "demo"
	s.Root = &specs.Root{Path: rootfs}
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratch, s)); err != nil {
		return err
	}
	deleted := false
	defer func() {
		if !deleted {
			_ = c.Modify(context.Background(), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs})
			_ = c.DeleteContainerState(context.Background(), id)
		}
	}()
	if err := c.Start(ctx, id); err != nil {
		return err
	}
	cgroups := containerCgroups(g, id)
	if len(cgroups) == 0 {
		return fmt.Errorf("container %s has no cgroup below %s", id, g.CgroupPrefix)
	}
	note("cgroup %s (in %d hierarchies)", cgroups[0][strings.Index(cgroups[0], g.CgroupPrefix):], len(cgroups))
	init, err := startProcess(ctx, g, c, id, nil, true)
	if err != nil {
		return err
	}
	defer init.st.Close()
	initOut := init.stream(hostclient.StdOut, "  | ")
	initErr := init.stream(hostclient.StdErr, "  ! ")

	// Give the greeting a moment so the transcript reads in order.
	time.Sleep(200 * time.Millisecond)
	step("exec `id` in the running container")
	if err := runExec(ctx, g, c, id, &specs.Process{Args: []string{"id"}, Cwd: "/", Env: []string{"PATH=/bin"}}); err != nil {
		return err
	}

	rows, cols := terminalSize()
	step("tty exec `stty size` on a %dx%d pty", rows, cols)
	tty := &specs.Process{Args: []string{"stty", "size"}, Cwd: "/", Env: []string{"PATH=/bin", "TERM=xterm"}, Terminal: true, ConsoleSize: &specs.Box{Height: uint(rows), Width: uint(cols)}}
	if err := runExec(ctx, g, c, id, tty); err != nil {
		return err
	}

	step("init: host writes \"bye\" to its stdin and half-closes it")
	if _, err := io.WriteString(init.st.Conn(hostclient.StdIn), "bye\n"); err != nil {
		return err
	}
	if err := init.st.CloseStdin(); err != nil {
		return err
	}
	<-initOut
	<-initErr
	code, err := c.WaitForProcess(ctx, id, init.pid, prot.InfiniteWaitTimeout)
	if err != nil {
		return err
	}
	note("WaitForProcess: exit code %d", code)
	select {
	case n := <-c.Notifications():
		note("notification: %s for %s (operation %s, result %d)", n.Type, n.ContainerID, n.Operation, n.Result)
	case <-ctx.Done():
		return errors.New("no exit notification")
	}

	step("teardown: CombinedLayers Remove, DeleteContainerState")
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs}); err != nil {
		return err
	}
	if err := c.DeleteContainerState(ctx, id); err != nil {
		return err
	}
	deleted = true
	inside, err := leftoversInside(g, id)
	if err != nil {
		return err
	}
	note("inside the gcs: %s", inside)

	prefix := g.CgroupPrefix
	_ = c.Close()
	stop()
	step("final check")
	problems := leftoversOutside(dir, prefix, id)
	if len(problems) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(problems, "; "))
	}
	note("gcs and its pid namespace gone; no mounts, no cgroups, no container processes left")
	fmt.Println("\ndemo done: clean")
	return nil
}

// proc is a started process and its host-side streams.
type proc struct {
	pid uint32
	st  *hostclient.Stdio
}

func startProcess(ctx context.Context, g *gcstest.GCS, c *hostclient.Client, id string, p *specs.Process, stdin bool) (*proc, error) {
	stderr := p == nil || !p.Terminal
	st, err := hostclient.OpenStdio(g.Transport, &g.Ports, stdin, true, stderr)
	if err != nil {
		return nil, err
	}
	params := &prot.ProcessParameters{CreateStdInPipe: stdin, CreateStdOutPipe: true, CreateStdErrPipe: stderr, OCIProcess: p}
	pid, err := c.ExecuteProcess(ctx, id, params, st.Ports)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Accept(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return &proc{pid: pid, st: st}, nil
}

// stream prints stream i line by line with a prefix until EOF, then
// closes the connection as a host does; the channel closes at the end.
func (p *proc) stream(i int, prefix string) <-chan struct{} {
	done := make(chan struct{})
	conn := p.st.Conn(i)
	if conn == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			fmt.Printf("%s%s\n", prefix, strings.TrimRight(sc.Text(), "\r"))
		}
		conn.Close()
	}()
	return done
}

func runExec(ctx context.Context, g *gcstest.GCS, c *hostclient.Client, id string, p *specs.Process) error {
	pr, err := startProcess(ctx, g, c, id, p, false)
	if err != nil {
		return err
	}
	defer pr.st.Close()
	out := pr.stream(hostclient.StdOut, "  | ")
	errs := pr.stream(hostclient.StdErr, "  ! ")
	<-out
	<-errs
	code, err := c.WaitForProcess(ctx, id, pr.pid, prot.InfiniteWaitTimeout)
	if err != nil {
		return err
	}
	note("exit code %d (pid %d in the gcs's namespace)", code, pr.pid)
	return nil
}

// terminalSize is this terminal's size, or 24x80.
func terminalSize() (rows, cols int) {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 0 && ws.Col > 0 {
		return int(ws.Row), int(ws.Col)
	}
	return 24, 80
}

// leftoversInside looks into the running gcs: mounts below its bundle
// root and the container's cgroup.
func leftoversInside(g *gcstest.GCS, id string) (string, error) {
	pid, err := g.Pid()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return "", err
	}
	mounts := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "/run/gcs/c/") {
			mounts++
		}
	}
	cgroups := containerCgroups(g, id)
	if mounts > 0 || len(cgroups) > 0 {
		return "", fmt.Errorf("after delete the gcs still has %d container mounts and cgroups %v", mounts, cgroups)
	}
	return "0 container mounts, 0 container cgroups", nil
}

// containerCgroups lists the container's cgroup directories: those named
// id below the gcs's cgroup prefix, in every hierarchy.
func containerCgroups(g *gcstest.GCS, id string) []string {
	var found []string
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", g.CgroupPrefix))
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() == id {
				found = append(found, p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return found
}

// leftoversOutside lists what the demo would leave on this machine.
func leftoversOutside(dir, prefix, id string) []string {
	var problems []string
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, dir) || strings.Contains(line, id) {
				problems = append(problems, "mount "+line)
			}
		}
	}
	for _, pattern := range []string{filepath.Join("/sys/fs/cgroup", "*", prefix), filepath.Join("/sys/fs/cgroup", prefix), filepath.Join("/sys/fs/cgroup", "*", id)} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			problems = append(problems, "cgroup "+p)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir) {
			problems = append(problems, "process "+filepath.Dir(p))
		}
	}
	return problems
}
