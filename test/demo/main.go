package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }
func info(format string, args ...any) { fmt.Printf("   "+format+"\n", args...) }

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "opengcs-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("starting bin/gcs in its own mount and PID namespace (own /run), bridge over unix sockets")
	g, err := gcstest.StartDir(dir, gcstest.Options{})
	if err != nil {
		return err
	}
	defer g.Stop()
	c, err := g.Accept(ctx)
	if err != nil {
		return fmt.Errorf("gcs did not connect (log: %s): %w", g.LogPath, err)
	}
	defer c.Close()
	info("gcs dialled the bridge port %s_%d; log in %s", g.Transport.Prefix, uint32(0x40000000), g.LogPath)

	step("NegotiateProtocol")
	resp, err := c.Negotiate(ctx)
	if err != nil {
		return err
	}
	caps, _ := json.MarshalIndent(resp.Capabilities, "   ", "  ")
	info("protocol version %d", resp.Version)
	info("capabilities %s", caps)

	step("DumpStacks")
	stacks, err := c.DumpStacks(ctx)
	if err != nil {
		return err
	}
	info("%d bytes of goroutine stacks, starting %q", len(stacks), strings.SplitN(stacks, "\n", 2)[0])

	step("an unknown request (0x10107701)")
	err = c.Call(ctx, 0x10107701, &prot.MessageBase{ContainerID: prot.NullContainerID, ActivityID: prot.NullActivityID}, &prot.MessageResponseBase{})
	info("answered: %v", err)

	step("a busybox layer and a container on it")
	layer := filepath.Join(dir, "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		return err
	}
	id := fmt.Sprintf("demo%060x", time.Now().UnixNano())
	bundle := "/run/gcs/c/" + id
	rootfs, scratch := bundle+"/rootfs", bundle+"/scratch/"+id
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers,
		&prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfs, Layers: []prot.Layer{{Path: layer}}, ScratchPath: scratch}); err != nil {
		return err
	}
	info("CombinedLayers Add: overlay of %s at %s", layer, rootfs)
	spec := testutil.Spec("sh", "-c", `trap 'echo init: got SIGTERM, leaving; exit 0' TERM
echo "init: hello from $(hostname), pid $$ in my own namespace"
while :; do sleep 0.2; done`)
	spec.Hostname = "demo-container"
	spec.Root = &specs.Root{Path: rootfs}
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratch, spec)); err != nil {
		return err
	}
	if err := c.Start(ctx, id); err != nil {
		return err
	}
	info("Create + Start: %s…", id[:16])
	initp, out, err := startProcess(ctx, g, c, id, nil, false)
	if err != nil {
		return err
	}
	info("ExecuteProcess (init): pid %d in the VM; its output:", initp)
	lines := stream(out, "   | ")
	waitLine(lines, "init: hello")

	step("exec into the running container")
	execp, eout, err := startProcess(ctx, g, c, id, &specs.Process{Args: []string{"sh", "-c", "echo exec: I am $(id -u) in $(pwd), I see: $(ls / | tr '\\n' ' ')"}, Cwd: "/", Env: []string{"PATH=/bin"}}, false)
	if err != nil {
		return err
	}
	drain(stream(eout, "   | "))
	code, err := c.WaitForProcess(ctx, id, execp, prot.InfiniteWaitTimeout)
	if err != nil {
		return err
	}
	info("exec pid %d exited with %d", execp, code)

	step("tty exec (a pty relayed over the bridge's stdio ports), then ResizeConsole")
	ttyp, tout, err := startProcess(ctx, g, c, id, &specs.Process{Terminal: true, ConsoleSize: &specs.Box{Height: 24, Width: 80},
		Args: []string{"sh", "-c", "echo tty: $(tty) size $(stty size); sleep 0.5; echo tty: size now $(stty size)"}, Cwd: "/", Env: []string{"PATH=/bin"}}, true)
	if err != nil {
		return err
	}
	tlines := stream(tout, "   | ")
	waitLine(tlines, "tty:")
	if err := c.ResizeConsole(ctx, id, ttyp, 50, 132); err != nil {
		return err
	}
	drain(tlines)
	if code, err = c.WaitForProcess(ctx, id, ttyp, prot.InfiniteWaitTimeout); err != nil {
		return err
	}
	info("tty exec exited with %d", code)

	step("ShutdownGraceful: SIGTERM to the init")
	if err := c.Shutdown(ctx, id, false); err != nil {
		return err
	}
	drain(lines)
	if code, err = c.WaitForProcess(ctx, id, initp, prot.InfiniteWaitTimeout); err != nil {
		return err
	}
	info("init exited with %d", code)
	select {
	case n := <-c.Notifications():
		info("notification: container %s… %s (operation %s, result %d)", n.ContainerID[:16], n.Type, n.Operation, n.Result)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no exit notification")
	}

	step("teardown as a host does it")
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs}); err != nil {
		return err
	}
	info("CombinedLayers Remove: rootfs unmounted")
	if err := c.DeleteContainerState(ctx, id); err != nil {
		return err
	}
	info("DeleteContainerState: runc state, bundle and scratch removed")
	_, err = c.WaitForProcess(ctx, id, initp, 0)
	info("the container is gone: %v", err)
	c.Close()
	prefix := g.CgroupPrefix
	g.Stop()
	left, _ := filepath.Glob("/sys/fs/cgroup/*" + prefix)
	info("gcs stopped: its namespaces are gone with it; cgroups left behind: %d", len(left))
	if len(left) != 0 {
		return fmt.Errorf("cgroups left behind: %v", left)
	}
	fmt.Println("\ndemo done.")
	return nil
}

// startProcess opens the host's stdio listeners, sends ExecuteProcess and
// accepts the gcs's connections; it returns the pid and stdout.
func startProcess(ctx context.Context, g *gcstest.GCS, c *hostclient.Client, id string, p *specs.Process, tty bool) (uint32, io.ReadCloser, error) {
	st, err := hostclient.OpenStdio(g.Transport, &g.Ports, tty, true, !tty)
	if err != nil {
		return 0, nil, err
	}
	params := &prot.ProcessParameters{CreateStdInPipe: tty, CreateStdOutPipe: true, CreateStdErrPipe: !tty, OCIProcess: p}
	pid, err := c.ExecuteProcess(ctx, id, params, st.Ports)
	if err != nil {
		st.Close()
		return 0, nil, err
	}
	if err := st.Accept(ctx); err != nil {
		st.Close()
		return 0, nil, err
	}
	if !tty {
		go drainQuietly(st.Conn(hostclient.StdErr))
	}
	return pid, st.Conn(hostclient.StdOut), nil
}

// stream prints r line by line with prefix and passes the lines on.
func stream(r io.ReadCloser, prefix string) <-chan string {
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		defer r.Close() // a host closes its end once a stream is drained
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			fmt.Println(prefix + line)
			lines <- line
		}
	}()
	return lines
}

func waitLine(lines <-chan string, prefix string) {
	for l := range lines {
		if strings.Contains(l, prefix) {
			return
		}
	}
}

func drain(lines <-chan string) {
	for range lines {
	}
}

func drainQuietly(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, r)
	r.Close()
}
