package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hogEnv makes the test binary act as a memory hog: it waits for a line on
// stdin (so it can be moved into a cgroup first), allocates and touches the
// given number of bytes, reports "ready" on stdout and then sleeps until it
// is killed.
const hogEnv = "OPENGCS_CGROUP_TEST_HOG"

func TestMain(m *testing.M) {
	if v := os.Getenv(hogEnv); v != "" {
		runHog(v)
		return
	}
	os.Exit(m.Run())
}

func runHog(size string) {
	n, err := strconv.Atoi(size)
	if err != nil {
		os.Exit(2)
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(3)
	}
	buf := make([]byte, n)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
		buf[0]++
	}
}

// hog is a running memory hog child.
type hog struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	done  chan error
}

// startHog starts the hog, moves it into cg and tells it to allocate bytes.
// Cleanup kills it.
func startHog(t *testing.T, cg *Cgroup, bytes int) *hog {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", hogEnv, bytes))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hog{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), done: make(chan error, 1)}
	go func() { h.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.done
	})
	if err := cg.AddProcess(cmd.Process.Pid); err != nil {
		t.Fatalf("move hog into %s: %v", cg.Path(), err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	return h
}

// waitReady waits for the hog to report that its memory is allocated.
func (h *hog) waitReady(t *testing.T) {
	t.Helper()
	line, err := h.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("hog not ready: %q, %v", line, err)
	}
}

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "opengcs-test-" + hex.EncodeToString(b)
}

// v2Root returns a cgroup2 mount to test against: the machine's root when
// it is pure v2, else the "unified" mount of a hybrid host.
func v2Root(t *testing.T) (string, bool) {
	t.Helper()
	for _, r := range []string{DefaultRoot, filepath.Join(DefaultRoot, "unified")} {
		var st unix.Statfs_t
		if unix.Statfs(r, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return r, true
		}
	}
	return "", false
}

// testHierarchy opens root with a fresh random base, creates the base and
// registers a cleanup that kills any process left in the test tree and
// removes every cgroup below the base (and, on v2, turns off controllers the
// test enabled in the root's subtree_control).
func testHierarchy(t *testing.T, root string, opts ...Option) *Hierarchy {
	t.Helper()
	base := "/" + randomName(t)
	var before []string
	if mode, err := DetectMode(root); err == nil && mode == ModeV2 {
		before, _ = readControllers(filepath.Join(root, "cgroup.subtree_control"))
	}
	h, err := Open(root, append([]Option{WithBase(base)}, opts...)...)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	var tops []string
	if h.Mode() == ModeV2 {
		tops = []string{filepath.Join(root, base)}
	} else {
		for _, m := range h.mounts {
			tops = append(tops, filepath.Join(root, m, base))
		}
	}
	t.Cleanup(func() {
		for _, top := range tops {
			if err := removeTree(top); err != nil {
				t.Errorf("cleanup %s: %v", top, err)
			}
		}
		if h.Mode() == ModeV2 {
			restoreSubtree(root, before)
		}
	})
	if _, err := h.Create("/"); err != nil {
		t.Fatalf("create base: %v", err)
	}
	return h
}

// restoreSubtree disables controllers that were not enabled in root's
// subtree_control before the test (best effort: another user may now rely
// on them, in which case the kernel refuses and they stay on).
func restoreSubtree(root string, before []string) {
	had := map[string]bool{}
	for _, c := range before {
		had[c] = true
	}
	now, err := readControllers(filepath.Join(root, "cgroup.subtree_control"))
	if err != nil {
		return
	}
	for _, c := range now {
		if !had[c] {
			_ = os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("-"+c), 0)
		}
	}
}

// removeTree kills the processes of every cgroup under top and removes the
// cgroups, deepest first.
func removeTree(top string) error {
	var dirs []string
	err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := killAll(dirs[i]); err != nil {
			return err
		}
		var rmErr error
		for try := 0; try < 100; try++ {
			if rmErr = os.Remove(dirs[i]); rmErr == nil || errors.Is(rmErr, os.ErrNotExist) {
				rmErr = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if rmErr != nil {
			return rmErr
		}
	}
	return nil
}

func killAll(dir string) error {
	for try := 0; try < 250; try++ {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("processes left in %s", dir)
}

// availableHierarchies returns one test hierarchy per cgroup mode this
// machine offers, keyed by mode: the v1 controllers of a v1/hybrid host
// and the cgroup2 mount (the root on a pure v2 host, "unified" on a hybrid
// one).
func availableRoots(t *testing.T) map[Mode]string {
	t.Helper()
	roots := map[Mode]string{}
	if mode, err := DetectMode(DefaultRoot); err == nil && mode == ModeV1 {
		roots[ModeV1] = DefaultRoot
	}
	if r, ok := v2Root(t); ok {
		roots[ModeV2] = r
	}
	if len(roots) == 0 {
		t.Fatalf("no cgroup filesystem under %s", DefaultRoot)
	}
	return roots
}

// hasMemory reports whether the hierarchy can use the memory controller.
func hasMemory(h *Hierarchy) bool { return h.RequireMemory() == nil }
