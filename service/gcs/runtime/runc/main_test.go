package runc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/runtime/runc"
)

// The test binary is one GCS-like process: one Reaper, one runc Runtime with
// a private runc root and state dir.
var (
	rp       *reaper.Reaper
	rt       *runc.Runtime
	runcBin  string
	runcRoot string
	stateDir string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "runc tests must run as root")
		return 1
	}
	var err error
	// Built (if missing) before the Reaper exists: it uses exec.Cmd.
	if runcBin, err = testutil.RuncBinary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Short path: console sockets live below it.
	if stateDir, err = os.MkdirTemp("", "gcsrt"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(stateDir)
	runcRoot = filepath.Join(stateDir, "root")
	if rp, err = reaper.New(reaper.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer rp.Close()
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	rt, err = runc.New(runc.Options{
		Binary:   runcBin,
		Root:     runcRoot,
		StateDir: stateDir,
		NoPivot:  true,
		Reaper:   rp,
		Logger:   logrus.NewEntry(log),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// Whatever a failed test left behind.
	if states, err := rt.List(context.Background()); err == nil {
		for _, s := range states {
			fmt.Fprintf(os.Stderr, "leftover container %s (%s)\n", s.ID, s.Status)
			runcCLI(context.Background(), "delete", "--force", s.ID)
			code = 1
		}
	}
	return code
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runcCLI runs runc directly against the test root, bypassing the driver.
func runcCLI(ctx context.Context, args ...string) (reaper.Result, error) {
	return rp.Run(ctx, exec.Command(runcBin, append([]string{"--root", runcRoot}, args...)...))
}

var nonID = regexp.MustCompile(`[^A-Za-z0-9]+`)

// newID returns a unique, valid container id derived from the test name.
func newID(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := strings.Trim(nonID.ReplaceAllString(t.Name(), "-"), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
		name = strings.TrimLeft(name, "-")
	}
	return strings.ToLower(name) + "-" + hex.EncodeToString(b)
}

// cgroupName is the cgroup every test container gets, one level below the
// hierarchy roots so runc delete removes it entirely.
func cgroupName(id string) string { return "gcsrt-" + id }

// bundle writes a busybox bundle for spec in a fresh temp dir.
func bundle(t *testing.T, id string, spec *specs.Spec) string {
	t.Helper()
	spec.Linux.CgroupsPath = "/" + cgroupName(id)
	dir := t.TempDir()
	if err := testutil.WriteBundle(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// create creates a container running spec and registers its forced
// deletion, and a check that no cgroup is left, as cleanup.
func create(t *testing.T, spec *specs.Spec, stdio runtime.StdioFiles) runtime.Container {
	t.Helper()
	id := newID(t)
	b := bundle(t, id, spec)
	c, err := rt.Create(ctxT(t), id, b, stdio)
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
	return c
}

func cleanupContainer(t *testing.T, id string) {
	ctx := context.Background()
	if c, err := rt.Get(id); err == nil {
		if err := c.Delete(ctx, true); err != nil {
			t.Errorf("cleanup: delete %s: %v", id, err)
		}
		if c.Console() != nil {
			c.Console().Close()
		}
	} else if _, err := runcCLI(ctx, "state", id); err == nil {
		runcCLI(ctx, "delete", "--force", id)
	}
	// v1 controllers (a v1 or hybrid host) and the unified root (pure v2).
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroupName(id))
	if _, err := os.Stat("/sys/fs/cgroup/" + cgroupName(id)); err == nil {
		matches = append(matches, "/sys/fs/cgroup/"+cgroupName(id))
	}
	for _, m := range matches {
		t.Errorf("cgroup %s left behind", m)
		// Kill what a failed test left in it, so the cgroup can go.
		procs, _ := os.ReadFile(filepath.Join(m, "cgroup.procs"))
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		eventually(t, "cgroup "+m+" removable", func() bool {
			err := unix.Rmdir(m)
			return err == nil || errors.Is(err, unix.ENOENT)
		})
	}
	if _, err := os.Stat(filepath.Join(stateDir, id)); !os.IsNotExist(err) {
		t.Errorf("state dir of %s left behind (%v)", id, err)
	}
}

// pipes returns StdioFiles for the container and the test's ends. The
// container's ends are closed in the test once Create/Exec returned.
type pipes struct {
	stdin          *os.File
	stdout, stderr *os.File
	child          runtime.StdioFiles
}

func newPipes(t *testing.T) *pipes {
	t.Helper()
	p := &pipes{}
	var err error
	var r, w *os.File
	if r, w, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	p.child.Stdin, p.stdin = r, w
	if r, w, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	p.stdout, p.child.Stdout = r, w
	if r, w, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	p.stderr, p.child.Stderr = r, w
	t.Cleanup(func() {
		for _, f := range []*os.File{p.stdin, p.stdout, p.stderr, p.child.Stdin, p.child.Stdout, p.child.Stderr} {
			f.Close()
		}
	})
	return p
}

func (p *pipes) closeChild() {
	p.child.Stdin.Close()
	p.child.Stdout.Close()
	p.child.Stderr.Close()
}

// readAll reads f until EOF, or EIO (a pty master whose slave is gone).
func readAll(t *testing.T, f io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, unix.EIO) {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func wait(t *testing.T, w interface {
	Wait(context.Context) (int, error)
}, want int) {
	t.Helper()
	code, err := w.Wait(ctxT(t))
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if code != want {
		t.Fatalf("exit code %d, want %d", code, want)
	}
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// zombies lists this process's children that are zombies.
func zombies() []int {
	var zs []int
	me := os.Getpid()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(me) {
			zs = append(zs, pid)
		}
	}
	return zs
}

// eventually polls cond until it holds or the test context ends.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := ctxT(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("never happened: %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
