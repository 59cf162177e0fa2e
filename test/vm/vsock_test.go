package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

var (
	backendOnce sync.Once
	backendPath string
	backendErr  error
)

// requireBackend builds bin/vhost-vsock next to the image.
func requireBackend(t testing.TB) string {
	t.Helper()
	img := requireImage(t)
	backendOnce.Do(func() {
		backendPath = filepath.Join(filepath.Dir(img.Initrd), "vhost-vsock")
		cmd := exec.Command("go", "build", "-trimpath", "-o", backendPath, "./cmd/vhost-vsock")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			backendErr = err
			t.Logf("%s", out)
		}
	})
	if backendErr != nil {
		t.Fatalf("build vhost-vsock: %v", backendErr)
	}
	return backendPath
}

// bootVsock starts a VM on the production vsock path and returns it with
// a negotiated bridge client. On failure the console, QEMU's and the
// back-end's output and the port-109 log are printed.
func bootVsock(t *testing.T, cfg VsockConfig) (*VsockVM, *hostclient.Client, time.Duration) {
	t.Helper()
	cfg.Backend = requireBackend(t)
	cfg.Image = image
	// unix socket paths are short: t.TempDir() can be too long.
	dir, err := os.MkdirTemp("", "vsvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg.Dir = dir
	v, err := StartVsock(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.Kill()
		if t.Failed() {
			t.Log(v.Logs())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	conn, err := v.AcceptBridge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := hostclient.New(conn)
	t.Cleanup(func() { c.Close() })
	resp, err := c.Negotiate(ctx)
	if err != nil {
		t.Fatalf("negotiate: %v", err)
	}
	ready := time.Since(v.Started)
	if resp.Version != prot.ProtocolVersion || resp.Capabilities.RuntimeOsType != "Linux" {
		t.Fatalf("negotiated %+v", resp)
	}
	return v, c, ready
}

// powerOffVsock powers the UVM off through the bridge, checks that QEMU
// and then the back-end exit cleanly, that init took the vsock path, and
// that every log line was JSON.
func powerOffVsock(t *testing.T, v *VsockVM, c *hostclient.Client) {
	t.Helper()
	go func() { _ = c.Shutdown(context.Background(), prot.NullContainerID, false) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := v.Wait(ctx); err != nil && ctx.Err() != nil {
		t.Fatalf("qemu still running after ShutdownGraceful: %v", err)
	}
	if err := v.BackendExit(ctx); err != nil {
		t.Errorf("vhost-vsock after QEMU exited: %v", err)
	}
	con, err := os.ReadFile(v.Console)
	if err != nil {
		t.Fatal(err)
	}
	console := string(con)
	if strings.Contains(console, "virtio-serial") || strings.Contains(console, "Kernel panic") {
		t.Errorf("console shows the test switch or a panic")
	}
	if bad := v.NonJSONLogLines(); len(bad) > 0 {
		t.Errorf("%d port-109 log lines are not JSON, first: %q", len(bad), bad[0])
	}
}

// startStdio starts a process (id, params) with the streams asked for
// relayed over vsock and returns its pid and the accepted streams.
func startStdio(ctx context.Context, t *testing.T, v *VsockVM, c *hostclient.Client, ports *hostclient.PortAllocator,
	id string, params *prot.ProcessParameters) (uint32, *hostclient.Stdio) {
	t.Helper()
	st, err := hostclient.OpenStdio(v.Transport, ports, params.CreateStdInPipe, params.CreateStdOutPipe, params.CreateStdErrPipe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	pid, err := c.ExecuteProcess(ctx, id, params, st.Ports)
	if err != nil {
		t.Fatalf("execute in %q: %v", id, err)
	}
	if err := st.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	return pid, st
}

// finishStdio feeds stdin (then closes it) and returns what arrived on
// stdout and stderr once both ended.
func finishStdio(t *testing.T, st *hostclient.Stdio, stdin []byte) (stdout, stderr []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	read := func(i int, dst *[]byte) {
		defer wg.Done()
		if st.Conn(i) == nil {
			return
		}
		b, err := io.ReadAll(st.Conn(i))
		if err != nil {
			errs <- fmt.Errorf("read stream %d: %w", i, err)
		}
		*dst = b
	}
	wg.Add(2)
	go read(hostclient.StdOut, &stdout)
	go read(hostclient.StdErr, &stderr)
	if in := st.Conn(hostclient.StdIn); in != nil {
		if _, err := in.Write(stdin); err != nil {
			t.Errorf("write stdin: %v", err)
		}
		st.CloseStdin()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return stdout, stderr
}

// TestVsockProductionPath boots the image with the host's kernel command
// line (plus -disable-time-sync and the SCSI sysfs seam QEMU needs) and
// no test transport: init takes its entropy from port 1, vsockexec sends
// the gcs's JSON log to port 109, the gcs dials the bridge on 0x40000000,
// and every stdio stream is its own vsock connection through
// bin/vhost-vsock. It runs a process in the UVM; a container from a
// SCSI layer with stdio, an exec, GetProperties and a tty exec with a
// resize; a long stdout stream checked byte for byte; a bridge the host
// drops and the gcs re-dials; then powers the VM off, and QEMU and the
// back-end must both exit cleanly.
func TestVsockProductionPath(t *testing.T) {
	t.Parallel()
	requireImage(t)
	layerDir := filepath.Join(t.TempDir(), "busybox")
	if err := testutil.BusyboxRootfs(layerDir); err != nil {
		t.Fatal(err)
	}
	layer := SCSIDisk{ID: "layer0", Image: filepath.Join(t.TempDir(), "busybox.ext4"), Lun: 3, ReadOnly: true}
	if err := DirToExt4(layerDir, layer.Image); err != nil {
		t.Fatal(err)
	}
	v, c, ready := bootVsock(t, VsockConfig{GCSArgs: GCSTestArgs})
	t.Logf("bridge ready over vsock %.2fs after qemu start", ready.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	var ports hostclient.PortAllocator

	// A process in the UVM: stdin through cat back to stdout, byte for
	// byte, and stderr and the exit code.
	in := make([]byte, 256<<10)
	rand.Read(in)
	params := &prot.ProcessParameters{CommandArgs: []string{"/bin/sh", "-c", "cat; echo to-stderr >&2; exit 3"},
		WorkingDirectory: "/", Environment: map[string]string{"PATH": GuestPath},
		CreateStdInPipe: true, CreateStdOutPipe: true, CreateStdErrPipe: true}
	pid, st := startStdio(ctx, t, v, c, &ports, prot.NullContainerID, params)
	out, errOut := finishStdio(t, st, in)
	if !bytes.Equal(out, in) || string(errOut) != "to-stderr\n" {
		t.Fatalf("uvm process: stdout %d of %d bytes (equal %v), stderr %q", len(out), len(in), bytes.Equal(out, in), errOut)
	}
	if code, err := c.WaitForProcess(ctx, prot.NullContainerID, pid, prot.InfiniteWaitTimeout); err != nil || code != 3 {
		t.Fatalf("uvm process exit %d, %v; want 3", code, err)
	}

	// A container from a SCSI layer, its init with stdio, and an exec.
	q, lc := layeredContainer(ctx, t, v, c, layer, "vs")
	defer q.Close()
	id, bundle, rootfs, scratch, layerPath := lc.id, lc.bundle, lc.rootfs, lc.scratch, lc.layerPath
	spec := testutil.Spec("sh", "-c", "tr a-z A-Z; echo init-stderr >&2; exit 5")
	spec.Hostname = "vsocktest"
	spec.Root.Path = rootfs
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratch, spec)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	// The init waits for its stdin while an exec runs.
	pid, initStdio := startStdio(ctx, t, v, c, &ports, id, &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true, CreateStdErrPipe: true})
	epid, est := startStdio(ctx, t, v, c, &ports, id, &prot.ProcessParameters{CreateStdOutPipe: true,
		OCIProcess: &specs.Process{Args: []string{"hostname"}, Cwd: "/", Env: []string{"PATH=/bin"}}})
	if eout, _ := finishStdio(t, est, nil); string(eout) != "vsocktest\n" {
		t.Fatalf("exec stdout %q", eout)
	}
	if code, err := c.WaitForProcess(ctx, id, epid, prot.InfiniteWaitTimeout); err != nil || code != 0 {
		t.Fatalf("exec exit %d, %v", code, err)
	}
	// GetProperties sees the waiting init.
	props, err := c.GetProperties(ctx, id, prot.PtProcessList)
	if err != nil {
		t.Fatalf("get properties: %v", err)
	}
	if !slices.ContainsFunc(props.ProcessList, func(p prot.ProcessDetails) bool { return p.ProcessID == pid }) {
		t.Fatalf("init %d not in the process list %+v", pid, props.ProcessList)
	}
	// A tty exec: its stdin and stdout are vsock streams, and a resize
	// reaches the pty.
	ttyPid, ttySt := startStdio(ctx, t, v, c, &ports, id, &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true,
		OCIProcess: &specs.Process{Terminal: true, ConsoleSize: &specs.Box{Height: 24, Width: 80},
			Args: []string{"sh", "-c", "stty size; read x; stty size"}, Cwd: "/", Env: []string{"PATH=/bin", "TERM=xterm"}}})
	tty := bufio.NewReader(ttySt.Conn(hostclient.StdOut))
	waitLine := func(want string) {
		t.Helper()
		for {
			line, err := tty.ReadString('\n')
			if strings.TrimSpace(line) == want {
				return
			}
			if err != nil {
				t.Fatalf("tty: no %q before %v", want, err)
			}
		}
	}
	waitLine("24 80")
	if err := c.ResizeConsole(ctx, id, ttyPid, 30, 100); err != nil {
		t.Fatalf("resize: %v", err)
	}
	io.WriteString(ttySt.Conn(hostclient.StdIn), "go\n")
	waitLine("30 100")
	if code, err := c.WaitForProcess(ctx, id, ttyPid, prot.InfiniteWaitTimeout); err != nil || code != 0 {
		t.Fatalf("tty exec exit %d, %v", code, err)
	}
	ttySt.Close()

	out, errOut = finishStdio(t, initStdio, []byte("over vsock\n"))
	if string(out) != "OVER VSOCK\n" || string(errOut) != "init-stderr\n" {
		t.Fatalf("container init: stdout %q, stderr %q", out, errOut)
	}
	if code, err := c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout); err != nil || code != 5 {
		t.Fatalf("container init exit %d, %v; want 5", code, err)
	}
	if err := c.Shutdown(ctx, id, false); err != nil {
		t.Fatalf("shutdown of the exited container: %v", err)
	}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs}); err != nil {
		t.Fatalf("combined layers remove: %v", err)
	}
	if err := c.DeleteContainerState(ctx, id); err != nil {
		t.Fatalf("delete container state: %v", err)
	}
	if err := DetachSCSI(ctx, q, c, layer, layerPath); err != nil {
		t.Fatal(err)
	}

	// A long stdout stream, checked byte for byte.
	const lines = 400000
	var want bytes.Buffer
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	pid, st = startStdio(ctx, t, v, c, &ports, prot.NullContainerID, &prot.ProcessParameters{
		CommandArgs: []string{"/bin/sh", "-c", "seq 1 $0", fmt.Sprint(lines)}, WorkingDirectory: "/",
		Environment: map[string]string{"PATH": GuestPath}, CreateStdOutPipe: true})
	start := time.Now()
	out, _ = finishStdio(t, st, nil)
	if !bytes.Equal(out, want.Bytes()) {
		t.Fatalf("long stream: %d of %d bytes, not equal", len(out), want.Len())
	}
	t.Logf("stdout stream of %.1f MiB over vsock: %.2fs", float64(len(out))/(1<<20), time.Since(start).Seconds())
	if code, err := c.WaitForProcess(ctx, prot.NullContainerID, pid, prot.InfiniteWaitTimeout); err != nil || code != 0 {
		t.Fatalf("seq exit %d, %v", code, err)
	}

	// The host drops the bridge: the gcs redials and renegotiates.
	c = redialBridge(ctx, t, v, c)
	if err := RunShell(ctx, c, 0, "true"); err != nil {
		t.Fatalf("after the bridge was re-dialled: %v", err)
	}
	powerOffVsock(t, v, c)
}

// redialBridge closes the host's end of the bridge and waits for the gcs
// to dial it again; it returns a client negotiated on the new connection.
func redialBridge(ctx context.Context, t *testing.T, v *VsockVM, old *hostclient.Client) *hostclient.Client {
	t.Helper()
	old.Close()
	conn, err := v.AcceptBridge(ctx)
	if err != nil {
		t.Fatalf("the gcs did not re-dial the bridge: %v", err)
	}
	c := hostclient.New(conn)
	t.Cleanup(func() { c.Close() })
	if _, err := c.Negotiate(ctx); err != nil {
		t.Fatalf("negotiate on the re-dialled bridge: %v", err)
	}
	return c
}

// TestVsockPlan9Share serves a host directory over 9P2000.L on a vsock
// port; the gcs mounts it (MappedDirectory); a process in the UVM, then
// a container with the share bind-mounted, each read a file the host
// wrote and write one the host reads back.
func TestVsockPlan9Share(t *testing.T) {
	t.Parallel()
	requireImage(t)
	if !slices.Contains(TestModules, "9p") {
		t.Skip("the image carries no 9p module yet (it comes with the generic kernel)")
	}
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "from-host"), []byte("written by the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	layerDir := filepath.Join(t.TempDir(), "busybox")
	if err := testutil.BusyboxRootfs(layerDir); err != nil {
		t.Fatal(err)
	}
	layer := SCSIDisk{ID: "layer0", Image: filepath.Join(t.TempDir(), "busybox.ext4"), Lun: 3, ReadOnly: true}
	if err := DirToExt4(layerDir, layer.Image); err != nil {
		t.Fatal(err)
	}
	v, c, _ := bootVsock(t, VsockConfig{GCSArgs: GCSTestArgs})
	const port = 0x40000100
	stop, err := v.ServePlan9(port, share)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const mnt = "/run/mounts/plan9/share0"
	md := &prot.LCOWMappedDirectory{MountPath: mnt, Port: port}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceMappedDirectory, md); err != nil {
		t.Fatalf("MappedDirectory add: %v", err)
	}
	if err := RunShell(ctx, c, 0, `grep -q " $1 9p " /proc/mounts && grep -qx "written by the host" "$1/from-host" && echo "written by the guest" > "$1/from-guest"`, mnt); err != nil {
		t.Fatalf("9p share in the UVM: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(share, "from-guest")); err != nil || string(b) != "written by the guest\n" {
		t.Fatalf("host reads %q, %v", b, err)
	}

	// A container with the share bind-mounted reads and writes it too.
	q, lc := layeredContainer(ctx, t, v, c, layer, "p9")
	defer q.Close()
	id, bundle, rootfs, scratch, layerPath := lc.id, lc.bundle, lc.rootfs, lc.scratch, lc.layerPath
	spec := testutil.Spec("sh", "-c", "cat /share/from-host && echo from the container > /share/from-container")
	spec.Hostname = "plan9"
	spec.Root.Path = rootfs
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/share", Type: "bind", Source: mnt, Options: []string{"rbind", "rw"}})
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratch, spec)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	var ports hostclient.PortAllocator
	pid, st := startStdio(ctx, t, v, c, &ports, id, &prot.ProcessParameters{CreateStdOutPipe: true})
	if out, _ := finishStdio(t, st, nil); string(out) != "written by the host\n" {
		t.Fatalf("container read %q from the share", out)
	}
	if code, err := c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout); err != nil || code != 0 {
		t.Fatalf("container exit %d, %v", code, err)
	}
	if b, err := os.ReadFile(filepath.Join(share, "from-container")); err != nil || string(b) != "from the container\n" {
		t.Fatalf("host reads %q, %v", b, err)
	}
	if err := c.Shutdown(ctx, id, false); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs}); err != nil {
		t.Fatalf("combined layers remove: %v", err)
	}
	if err := c.DeleteContainerState(ctx, id); err != nil {
		t.Fatalf("delete container state: %v", err)
	}
	if err := DetachSCSI(ctx, q, c, layer, layerPath); err != nil {
		t.Fatal(err)
	}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceMappedDirectory, md); err != nil {
		t.Fatalf("MappedDirectory remove: %v", err)
	}
	if err := RunShell(ctx, c, 0, `! grep -q " $1 " /proc/mounts`, mnt); err != nil {
		t.Fatalf("share still mounted: %v", err)
	}
	powerOffVsock(t, v, c)
}

// layerContainer names the guest paths of a container built on one SCSI
// layer by layeredContainer.
type layerContainer struct {
	id, bundle, rootfs, scratch, layerPath string
}

// layeredContainer prepares a container's root as a host does: it fakes the
// VMBus view of controller 0, hot-plugs layer and maps it read-only at
// /run/layers/busybox, then combines it with a scratch into the bundle's
// rootfs (CombinedLayers). The id starts with prefix. The caller closes the
// QMP connection and removes the layers when done.
func layeredContainer(ctx context.Context, t *testing.T, v *VsockVM, c *hostclient.Client, layer SCSIDisk, prefix string) (*QMP, layerContainer) {
	t.Helper()
	q, err := v.DialQMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := FakeVMBusSCSI(ctx, c); err != nil {
		q.Close()
		t.Fatal(err)
	}
	lc := layerContainer{id: fmt.Sprintf("%s%062x", prefix, time.Now().UnixNano()), layerPath: "/run/layers/busybox"}
	if err := AttachSCSI(ctx, q, c, layer, lc.layerPath); err != nil {
		q.Close()
		t.Fatal(err)
	}
	lc.bundle = "/run/gcs/c/" + lc.id
	lc.rootfs, lc.scratch = lc.bundle+"/rootfs", lc.bundle+"/scratch/"+lc.id
	layers := &prot.LCOWCombinedLayers{ContainerID: lc.id, ContainerRootPath: lc.rootfs, Layers: []prot.Layer{{Path: lc.layerPath}}, ScratchPath: lc.scratch}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		q.Close()
		t.Fatalf("combined layers: %v", err)
	}
	return q, lc
}
