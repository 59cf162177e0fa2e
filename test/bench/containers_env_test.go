package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// idSeq makes container ids unique within the benchmark process.
var idSeq atomic.Int64

func newContainerID(kind string) string {
	return fmt.Sprintf("bench-%s-%d-%d", kind, os.Getpid(), idSeq.Add(1))
}

// ctrEnv is one gcs able to run busybox containers, and a plain-runc
// baseline next to it: the same runc binary, a bundle with the config the
// gcs wrote for its own container, a private --root and cgroup prefix.
type ctrEnv struct {
	b     *testing.B
	g     *gcstest.GCS
	c     *hostclient.Client
	layer string

	runc       string
	runcRoot   string // --root of the baseline
	runcLogDir string
	cgPrefix   string // cgroup parent of the baseline containers
	bundle     string // baseline bundle; config.json written by baselineBundle
}

func newCtrEnv(b *testing.B) *ctrEnv {
	b.Helper()
	g, c := startGCS(b, "info")
	dir := b.TempDir()
	e := &ctrEnv{b: b, g: g, c: c, layer: filepath.Join(dir, "layer")}
	if err := testutil.BusyboxRootfs(e.layer); err != nil {
		b.Fatal(err)
	}
	runc, err := gcstest.Binary("runc")
	if err != nil {
		b.Fatal(err)
	}
	e.runc = runc
	e.runcRoot = filepath.Join(dir, "runc-root")
	e.runcLogDir = filepath.Join(dir, "runc-logs")
	e.bundle = filepath.Join(dir, "bundle")
	for _, d := range []string{e.runcRoot, e.runcLogDir, e.bundle} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	if err := testutil.BusyboxRootfs(filepath.Join(e.bundle, "rootfs")); err != nil {
		b.Fatal(err)
	}
	e.cgPrefix = fmt.Sprintf("/opengcs-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	b.Cleanup(func() {
		// Any baseline container still known to runc (a failed
		// iteration) is killed and deleted, then its cgroups removed.
		ents, _ := os.ReadDir(e.runcRoot)
		for _, ent := range ents {
			_ = exec.Command(e.runc, "--root", e.runcRoot, "delete", "--force", ent.Name()).Run()
		}
		gcstest.RemoveCgroups(e.cgPrefix)
	})
	return e
}

func ctxFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// gcsBundle and friends follow the layout the e2e tests use.
func gcsBundle(id string) string  { return "/run/gcs/c/" + id }
func gcsRootfs(id string) string  { return gcsBundle(id) + "/rootfs" }
func gcsScratch(id string) string { return gcsBundle(id) + "/scratch/" + id }

// spec is the container spec sent to the gcs: the busybox test spec with
// a cgroup below the gcs's prefix.
func (e *ctrEnv) spec(id string, args ...string) *specs.Spec {
	s := testutil.Spec(args...)
	s.Hostname = ""
	s.Root = &specs.Root{Path: gcsRootfs(id)}
	s.Linux.CgroupsPath = "/bench/" + id
	return s
}

// addLayers mounts the busybox layer as the container's root (the
// CombinedLayers request every host container starts with).
func (e *ctrEnv) addLayers(ctx context.Context, id string) error {
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: gcsRootfs(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: gcsScratch(id)}
	if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		return fmt.Errorf("combined layers add %s: %w", id, err)
	}
	return nil
}

func (e *ctrEnv) removeLayers(ctx context.Context, id string) error {
	if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: gcsRootfs(id)}); err != nil {
		return fmt.Errorf("combined layers remove %s: %w", id, err)
	}
	return nil
}

// startContainer creates and starts a container (layers already added)
// and starts its init with the requested streams. The caller reads the
// streams, waits and deletes.
func (e *ctrEnv) startContainer(ctx context.Context, id string, s *specs.Spec, stdout bool) (uint32, *hostclient.Stdio, error) {
	if err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(gcsBundle(id), gcsScratch(id), s)); err != nil {
		return 0, nil, fmt.Errorf("create %s: %w", id, err)
	}
	if err := e.c.Start(ctx, id); err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", id, err)
	}
	return e.execute(ctx, id, nil, stdout)
}

// execute starts the init (p == nil) or an exec'd process with stdout
// (optionally) relayed to the host.
func (e *ctrEnv) execute(ctx context.Context, id string, p *specs.Process, stdout bool) (uint32, *hostclient.Stdio, error) {
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, stdout, false)
	if err != nil {
		return 0, nil, err
	}
	pid, err := e.c.ExecuteProcess(ctx, id, &prot.ProcessParameters{CreateStdOutPipe: stdout, OCIProcess: p}, st.Ports)
	if err != nil {
		st.Close()
		return 0, nil, fmt.Errorf("execute process in %s: %w", id, err)
	}
	if err := st.Accept(ctx); err != nil {
		st.Close()
		return 0, nil, err
	}
	return pid, st, nil
}

// notification waits for the exit notification of id.
func (e *ctrEnv) notification(ctx context.Context, id string) error {
	select {
	case n := <-e.c.Notifications():
		if n.ContainerID != id {
			return fmt.Errorf("notification for %s, want %s", n.ContainerID, id)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no notification for %s: %w", id, ctx.Err())
	}
}

// gcsLifecycle is one container through the bridge, as a host drives it:
// CombinedLayers add, Create, Start, init started with stdout relayed,
// output read to EOF, WaitForProcess, exit notification,
// DeleteContainerState, CombinedLayers remove. It returns the time of the
// container part (Create through DeleteContainerState) and of the layer
// requests.
func (e *ctrEnv) gcsLifecycle(id string, args ...string) (ctr, layers time.Duration, out []byte, err error) {
	return e.gcsLifecycleStdio(id, true, args...)
}

// gcsLifecycleStdio is gcsLifecycle with the init's stdout relayed or not.
func (e *ctrEnv) gcsLifecycleStdio(id string, stdout bool, args ...string) (ctr, layers time.Duration, out []byte, err error) {
	ctx, cancel := ctxFor(60 * time.Second)
	defer cancel()
	t0 := time.Now()
	if err := e.addLayers(ctx, id); err != nil {
		return 0, 0, nil, err
	}
	t1 := time.Now()
	pid, st, err := e.startContainer(ctx, id, e.spec(id, args...), stdout)
	if err != nil {
		return 0, 0, nil, err
	}
	defer st.Close()
	if stdout {
		out, err = io.ReadAll(st.Conn(hostclient.StdOut))
		st.Conn(hostclient.StdOut).Close()
		if err != nil {
			return 0, 0, nil, fmt.Errorf("read stdout of %s: %w", id, err)
		}
	}
	code, err := e.c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("wait %s: %w", id, err)
	}
	if code != 0 {
		return 0, 0, nil, fmt.Errorf("%s exited with %d", id, code)
	}
	if err := e.notification(ctx, id); err != nil {
		return 0, 0, nil, err
	}
	if err := e.c.DeleteContainerState(ctx, id); err != nil {
		return 0, 0, nil, fmt.Errorf("delete %s: %w", id, err)
	}
	t2 := time.Now()
	if err := e.removeLayers(ctx, id); err != nil {
		return 0, 0, nil, err
	}
	t3 := time.Now()
	return t2.Sub(t1), t1.Sub(t0) + t3.Sub(t2), out, nil
}

// baselineBundle writes the baseline's config.json: the config the gcs
// wrote for container id (read through the gcs's mount namespace), with
// the root moved to the baseline's own busybox rootfs and the cgroup to
// the baseline's prefix. Call it while id exists in the gcs.
func (e *ctrEnv) baselineBundle(id string) error {
	p, err := e.g.Root(filepath.Join(gcsBundle(id), "config.json"))
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read the gcs's config of %s: %w", id, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode the gcs's config of %s: %w", id, err)
	}
	// Files the gcs bind-mounts from its bundle (hostname, hosts,
	// resolv.conf) are copied into the baseline's bundle.
	for i, m := range s.Mounts {
		rel, ok := strings.CutPrefix(m.Source, gcsBundle(id)+"/")
		if !ok {
			if strings.HasPrefix(m.Source, "/run/") {
				return fmt.Errorf("the gcs's config mounts %s from its own namespace; the baseline cannot reuse it", m.Source)
			}
			continue
		}
		src, err := e.g.Root(m.Source)
		if err != nil {
			return err
		}
		content, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("copy %s of %s: %w", rel, id, err)
		}
		dst := filepath.Join(e.bundle, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, content, 0o644); err != nil {
			return err
		}
		s.Mounts[i].Source = dst
	}
	s.Root = &specs.Root{Path: "rootfs"}
	b, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.bundle, "config.json"), b, 0o644)
}

// setBaselineProcess rewrites the baseline config's process arguments and
// cgroup path.
func (e *ctrEnv) setBaselineConfig(id string, args ...string) error {
	path := filepath.Join(e.bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	s.Process.Args = args
	s.Linux.CgroupsPath = e.cgPrefix + "/" + id
	b, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// runcCmd is a runc invocation with the global flags the gcs passes.
func (e *ctrEnv) runcCmd(sub string, args ...string) *exec.Cmd {
	log := filepath.Join(e.runcLogDir, sub+".log")
	all := append([]string{"--root", e.runcRoot, "--log", log, "--log-format", "json", sub}, args...)
	return exec.Command(e.runc, all...)
}

// runcRun is the baseline of a lifecycle: `runc run --no-pivot` of the
// bundle with stdout on a pipe read to EOF; runc creates, starts, waits
// and deletes the container.
func (e *ctrEnv) runcRun(id string) ([]byte, error) {
	var out bytes.Buffer
	cmd := e.runcCmd("run", "--no-pivot", "--bundle", e.bundle, id)
	cmd.Stdout = &out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("runc run %s: %w: %s", id, err, stderr.Bytes())
	}
	return out.Bytes(), nil
}

// runcSplit is the lifecycle the gcs drives, done with runc alone: runc
// create (stdout on a pipe), runc start, stdout read to EOF, the init
// waited for (this process must be a child subreaper), runc delete. It
// shows what three runc executions cost compared with one `runc run`.
func (e *ctrEnv) runcSplit(id string) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	pidFile := filepath.Join(e.runcLogDir, id+".pid")
	defer os.Remove(pidFile)
	create := e.runcCmd("create", "--no-pivot", "--bundle", e.bundle, "--pid-file", pidFile, id)
	create.Stdout = w
	err = create.Run()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("runc create %s: %w", id, err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("pid file of %s: %q", id, data)
	}
	if out, err := e.runcCmd("start", id).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc start %s: %w: %s", id, err, out)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return nil, fmt.Errorf("wait for the init of %s: %w", id, err)
	}
	if ws.ExitStatus() != 0 {
		return nil, fmt.Errorf("%s exited with %d", id, ws.ExitStatus())
	}
	if out, err := e.runcCmd("delete", id).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc delete %s: %w: %s", id, err, out)
	}
	return out, nil
}

// childSubreaper makes this process adopt orphaned descendants (the
// inits of containers whose runc create exited) until the benchmark ends.
func childSubreaper(b *testing.B) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// runcStartDetached runs a long-lived baseline container (for exec).
func (e *ctrEnv) runcStartDetached(id string) error {
	// The container keeps its stdio: it gets /dev/null, not a pipe this
	// process would wait on; runc's errors are in its log.
	cmd := e.runcCmd("run", "--no-pivot", "--detach", "--bundle", e.bundle, id)
	e.b.Cleanup(func() {
		_ = e.runcCmd("delete", "--force", id).Run()
	})
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(e.runcLogDir, "run.log"))
		return fmt.Errorf("runc run --detach %s: %w: %s", id, err, log)
	}
	return nil
}

// runcExecDetached is the baseline of an exec: `runc exec --detach
// --pid-file` with stdout on a pipe read to EOF (or /dev/null), then the
// process reaped by this process, which must be a child subreaper.
func (e *ctrEnv) runcExecDetached(id string, stdout bool, args ...string) ([]byte, error) {
	pidFile := filepath.Join(e.runcLogDir, id+".exec.pid")
	defer os.Remove(pidFile)
	cmd := e.runcCmd("exec", append([]string{"--detach", "--pid-file", pidFile, id}, args...)...)
	var r, w *os.File
	if stdout {
		var err error
		if r, w, err = os.Pipe(); err != nil {
			return nil, err
		}
		defer r.Close()
		cmd.Stdout = w
	}
	err := cmd.Run()
	if w != nil {
		w.Close()
	}
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(e.runcLogDir, "exec.log"))
		return nil, fmt.Errorf("runc exec --detach %s: %w: %s", id, err, log)
	}
	var out []byte
	if r != nil {
		if out, err = io.ReadAll(r); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("exec pid file of %s: %q", id, data)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return nil, fmt.Errorf("reap exec %d in %s: %w", pid, id, err)
	}
	if ws.ExitStatus() != 0 {
		return nil, fmt.Errorf("exec in %s exited with %d", id, ws.ExitStatus())
	}
	return out, nil
}

// sink is the host side of a stdout stream in the throughput benchmark:
// it reads to EOF with a large buffer and returns the byte count and the
// time from the first byte to EOF.
func sink(c net.Conn) (int64, time.Duration, error) {
	buf := make([]byte, 1<<20)
	var (
		n     int64
		first time.Time
	)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if n == 0 {
				first = time.Now()
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, time.Since(first), nil
		}
		if err != nil {
			return n, 0, err
		}
	}
}

// socketPair returns a connected pair of unix stream sockets (the kind
// the gcs's unix transport uses): the guest end and the host end.
func socketPair(b *testing.B) (guest, host *net.UnixConn) {
	b.Helper()
	dir := b.TempDir()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	guest, err = net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		b.Fatal(err)
	}
	host, err = l.AcceptUnix()
	if err != nil {
		guest.Close()
		b.Fatal(err)
	}
	return guest, host
}

// copyLoop is the plain relay the gcs must beat: 64 KiB reads from the
// pipe, each written to the socket.
func copyLoop(dst net.Conn, src *os.File) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func procArgs(args ...string) *specs.Process {
	return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}
