package gcstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	TempDir() string
}

// Options tune the gcs started.
type Options struct {
	// Args are extra gcs flags.
	Args []string
	// Binary overrides the gcs binary (default: <repo>/bin/gcs, built if
	// missing).
	Binary string
	// Listen starts the gcs with -listen: the test dials the bridge
	// (g.Transport.Dial(ctx, transport.BridgePort)) instead of accepting.
	Listen bool
	// Env is added to the gcs environment.
	Env []string
	// NetNS gives the gcs a network namespace of its own (only a loopback
	// link, down), so that tests can create and move interfaces without
	// touching the machine's. It dies with the gcs's PID namespace.
	NetNS bool
	// PrivateTmp gives the gcs a tmpfs of its own on /tmp, as in a VM,
	// for tests of files it writes there (chronyd.conf). Of the machine's
	// /tmp it sees only the directories of its binary, of runc, of the
	// transport and of the test (bound back over the tmpfs).
	PrivateTmp bool
	// TextLog starts the gcs with -log-format text. By default it logs
	// JSON, as it does for a real host, and Start fails the test at
	// cleanup if any line of the log is not a JSON entry (CheckLog).
	TextLog bool
	// Hostname, when set, gives the gcs a UTS namespace of its own whose
	// kernel hostname is this value ("(none)" is what a VM booted without
	// a hostname reports).
	Hostname string
}

// GCS is a running gcs.
type GCS struct {
	Transport *transport.Unix
	Dir       string
	LogPath   string
	Ports     hostclient.PortAllocator
	// CgroupPrefix is the gcs's private cgroup prefix, removed with every
	// cgroup below it when the gcs stops.
	CgroupPrefix string

	cmd      *exec.Cmd
	listener net.Listener
	conns    chan net.Conn
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Binary returns <repo>/bin/<name>, building ./cmd/<name> when the file is
// missing.
func Binary(name string) (string, error) {
	root, err := testutil.RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	// The same build tags as the Makefile's (rego: the Rego policy enforcer).
	cmd := exec.Command("go", "build", "-tags", "rego", "-o", p, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v: %s", name, err, out)
	}
	return p, nil
}

// Start launches the gcs and listens for its bridge connection. The gcs is
// killed, and its log printed on failure, when the test ends.
func Start(t TB, o Options) *GCS {
	t.Helper()
	g, err := start(t.TempDir(), o)
	if err != nil {
		t.Fatalf("start gcs: %v", err)
	}
	t.Cleanup(func() {
		g.Stop()
		if !o.TextLog {
			if err := g.CheckLog(); err != nil {
				t.Errorf("%v", err)
			}
		}
		if t.Failed() {
			if b, err := os.ReadFile(g.LogPath); err == nil {
				t.Logf("gcs log:\n%s", tail(b, 16<<10))
			}
		}
	})
	return g
}

// StartDir is Start without a testing.TB, for the demo; the caller must
// call Stop.
func StartDir(dir string, o Options) (*GCS, error) { return start(dir, o) }

func start(dir string, o Options) (*GCS, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Binary("gcs"); err != nil {
			return nil, err
		}
	}
	tr := transport.NewUnix(filepath.Join(dir, "vsock"))
	// The host listens for the gcs's bridge connection, unless the gcs
	// listens itself (-listen) and the test dials in.
	var l net.Listener = noListener{}
	if o.Listen {
		o.Args = append(o.Args, "-listen")
	} else {
		var err error
		if l, err = tr.Listen(transport.BridgePort); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, "gcs.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		l.Close()
		return nil, err
	}
	defer logFile.Close()
	args := []string{
		"--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
	}
	if o.NetNS {
		args = append(args, "--net")
	}
	runc, err := testutil.RuncBinary()
	if err != nil {
		l.Close()
		logFile.Close()
		return nil, err
	}
	mounts := `mount -t tmpfs -o mode=0755 tmpfs /run`
	if o.PrivateTmp {
		// The machine's /tmp stays reachable at /run/.host-tmp only long
		// enough to bind back the directories under it that the gcs needs
		// (its binary, runc's, the transport's and the test's), so that a
		// checkout under /tmp works too; everything else of /tmp is the
		// gcs's own tmpfs.
		mounts += ` && mkdir /run/.host-tmp && mount --bind /tmp /run/.host-tmp && mount -t tmpfs -o mode=1777 tmpfs /tmp` +
			` && for d in $GCSTEST_KEEP_TMP; do mkdir -p "$d" && mount --bind "/run/.host-tmp/${d#/tmp/}" "$d" || exit 1; done` +
			` && umount /run/.host-tmp && rmdir /run/.host-tmp`
		o.Env = append(o.Env, "GCSTEST_KEEP_TMP="+strings.Join(underTmp(bin, runc, tr.Prefix, dir), " "))
	}
	if o.Hostname != "" {
		args = append(args, "--uts")
		mounts = `printf %s "$GCSTEST_HOSTNAME" > /proc/sys/kernel/hostname && ` + mounts
		o.Env = append(o.Env, "GCSTEST_HOSTNAME="+o.Hostname)
	}
	args = append(args,
		"--", "/bin/sh", "-c", mounts+` && exec "$0" "$@"`,
		bin, "-v4", "-transport", "unix:"+tr.Prefix, "-loglevel", "debug", "-redial-interval", "20ms",
	)
	if o.TextLog {
		args = append(args, "-log-format", "text")
	} else {
		args = append(args, "-log-format", "json")
	}
	// Every gcs gets a private cgroup prefix: it creates /gcs and /pods
	// and moves itself into /gcs at start.
	cgroupPrefix := fmt.Sprintf("/opengcs-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	args = append(args, "-runc", runc, "-cgroup-prefix", cgroupPrefix, "-disable-time-sync")
	args = append(args, o.Args...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		l.Close()
		return nil, fmt.Errorf("start unshare: %w", err)
	}
	g := &GCS{Transport: tr, CgroupPrefix: cgroupPrefix, Dir: dir, LogPath: logPath, cmd: cmd, listener: l, conns: make(chan net.Conn, 16), exited: make(chan struct{})}
	go g.acceptLoop()
	go func() {
		g.waitErr = cmd.Wait()
		close(g.exited)
	}()
	return g, nil
}

// Accept waits for the gcs to dial the bridge and returns a client on that
// connection (not yet negotiated).
func (g *GCS) Accept(ctx context.Context) (*hostclient.Client, error) {
	c, err := g.AcceptConn(ctx)
	if err != nil {
		return nil, err
	}
	return hostclient.New(c), nil
}

func (g *GCS) acceptLoop() {
	defer close(g.conns)
	for {
		c, err := g.listener.Accept()
		if err != nil {
			return
		}
		g.conns <- c
	}
}

// AcceptConn waits for the gcs to dial the bridge and returns the raw
// connection (for a client resuming after Migrate).
func (g *GCS) AcceptConn(ctx context.Context) (net.Conn, error) {
	select {
	case c, ok := <-g.conns:
		if !ok {
			return nil, fmt.Errorf("bridge listener closed")
		}
		return c, nil
	case <-g.exited:
		return nil, fmt.Errorf("gcs exited before connecting: %v", g.waitErr)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Connect accepts and negotiates.
func (g *GCS) Connect(ctx context.Context) (*hostclient.Client, error) {
	c, err := g.Accept(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.Negotiate(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Exited is closed when the gcs (its PID namespace) has ended.
func (g *GCS) Exited() <-chan struct{} { return g.exited }

// Alive reports whether the gcs is still running.
func (g *GCS) Alive() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// Pid returns the gcs's pid as seen from outside its namespaces.
func (g *GCS) Pid() (int, error) {
	// unshare's child is /bin/sh, which execs the gcs.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", g.cmd.Process.Pid, g.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("gcs process not found")
	}
	return strconv.Atoi(f[0])
}

// RSS returns the gcs's resident set size in bytes.
func (g *GCS) RSS() (int64, error) {
	pid, err := g.Pid()
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("VmRSS not found")
}

// Root returns a path inside the gcs's mount namespace, seen from outside.
func (g *GCS) Root(p string) (string, error) {
	pid, err := g.Pid()
	if err != nil {
		return "", err
	}
	return filepath.Join(fmt.Sprintf("/proc/%d/root", pid), p), nil
}

// Log returns the gcs log so far.
func (g *GCS) Log() string {
	b, _ := os.ReadFile(g.LogPath)
	return string(b)
}

// CheckLog reads the whole log (stdout and stderr of the gcs and of the
// shell that starts it) and returns an error listing every line that is
// not a JSON log entry with time, level and msg: the host's decoder would
// stop reading at the first of them. If $OPENGCS_LOG_TALLY names a file,
// "<lines> <bad lines>" is appended to it, so a whole suite's log can be
// counted.
func (g *GCS) CheckLog() error {
	f, err := os.Open(g.LogPath)
	if err != nil {
		return err
	}
	defer f.Close()
	lines, bad, err := logging.Check(f)
	if err != nil {
		return fmt.Errorf("read gcs log: %w", err)
	}
	if tally := os.Getenv("OPENGCS_LOG_TALLY"); tally != "" {
		if tf, err := os.OpenFile(tally, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintf(tf, "%d %d\n", lines, len(bad))
			tf.Close()
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d gcs log lines are not JSON log entries:\n%s", len(bad), lines, strings.Join(bad, "\n"))
	}
	return nil
}

// Stop kills the gcs and its whole PID namespace and waits for it.
func (g *GCS) Stop() {
	g.stopOnce.Do(func() {
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
		}
		_ = g.listener.Close()
		if g.CgroupPrefix != "" {
			RemoveCgroups(g.CgroupPrefix)
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	i := bytes.IndexByte(b[len(b)-n:], '\n')
	return b[len(b)-n+i+1:]
}

// RemoveCgroups removes prefix, and every cgroup below it, from each
// mounted cgroup hierarchy (v1 controllers and the v2 tree). Processes
// still in them are killed first.
func RemoveCgroups(prefix string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		dir := filepath.Join(r, prefix)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if data, err := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(data)) {
					if pid, err := strconv.Atoi(f); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			for try := 0; try < 50; try++ {
				if err := os.Remove(dirs[i]); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// noListener stands for the host listener when the gcs listens itself.
type noListener struct{}

func (noListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (noListener) Close() error              { return nil }
func (noListener) Addr() net.Addr            { return &net.UnixAddr{Net: "unix"} }

// underTmp returns the directories of paths that lie under /tmp, each
// once, without one that another contains, with no white space (they go
// through a shell word list).
func underTmp(paths ...string) []string {
	var dirs []string
	for _, p := range paths {
		d := filepath.Clean(p)
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			d = filepath.Dir(d)
		}
		if !strings.HasPrefix(d, "/tmp/") || strings.ContainsAny(d, " \t\n") {
			continue
		}
		dirs = append(dirs, d)
	}
	var out []string
	for _, d := range dirs {
		inside := false
		for _, o := range dirs {
			if o != d && strings.HasPrefix(d, o+"/") {
				inside = true
			}
		}
		if !inside && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}
