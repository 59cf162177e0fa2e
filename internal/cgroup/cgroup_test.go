package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountFS mounts fstype at target and unmounts it in cleanup.
func mountFS(t *testing.T, fstype, source, target, data string) {
	t.Helper()
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(source, target, fstype, 0, data); err != nil {
		t.Fatalf("mount %s at %s: %v", fstype, target, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// TestDetectMode builds real layouts: a tmpfs holding a (named) v1
// hierarchy plus a cgroup2 "unified" mount must be v1; a cgroup2 mount
// itself must be v2; a plain directory is no cgroup filesystem at all.
func TestDetectMode(t *testing.T) {
	dir := t.TempDir()
	hybrid := filepath.Join(dir, "hybrid")
	mountFS(t, "tmpfs", "tmpfs", hybrid, "mode=0755")
	named := "opengcs-" + randomName(t)[len("opengcs-test-"):]
	mountFS(t, "cgroup", "cgroup", filepath.Join(hybrid, "named"), "none,name="+named)
	mountFS(t, "cgroup2", "cgroup2", filepath.Join(hybrid, "unified"), "")
	pureV2 := filepath.Join(dir, "v2")
	mountFS(t, "cgroup2", "cgroup2", pureV2, "")
	onlyUnified := filepath.Join(dir, "only-unified")
	mountFS(t, "tmpfs", "tmpfs", onlyUnified, "mode=0755")
	mountFS(t, "cgroup2", "cgroup2", filepath.Join(onlyUnified, "unified"), "")

	for _, tc := range []struct {
		name string
		root string
		want Mode
		err  error
	}{
		{"hybrid is v1", hybrid, ModeV1, nil},
		{"cgroup2 root is v2", pureV2, ModeV2, nil},
		{"tmpfs with only a v2 submount is not a cgroup root", onlyUnified, 0, ErrNoCgroupFS},
		{"plain directory", t.TempDir(), 0, ErrNoCgroupFS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DetectMode(tc.root)
			if !errors.Is(err, tc.err) {
				t.Fatalf("DetectMode(%s) error = %v, want %v", tc.root, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("DetectMode(%s) = %v, want %v", tc.root, got, tc.want)
			}
		})
	}
	if _, err := DetectMode(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("DetectMode of a missing directory succeeded")
	}

	// The machine itself: a hybrid host must come out as v1.
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join(DefaultRoot, "unified"), &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		if got, err := DetectMode(DefaultRoot); err != nil || got != ModeV1 {
			t.Fatalf("hybrid host %s detected as %v, %v; want v1", DefaultRoot, got, err)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/pods", "/pods", true},
		{"/pods/abc/", "/pods/abc", true},
		{"//pods//x", "/pods/x", true},
		{"pods/x", "/pods/x", true},
		{"/pods/../../etc", "", false},
		{"", "", false},
	} {
		got, err := cleanPath(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("cleanPath(%q) error %v is not ErrInvalidPath", tc.in, err)
		}
	}
}

func TestPodsLimit(t *testing.T) {
	for _, tc := range []struct {
		total, reserve, want uint64
		err                  error
	}{
		{1 << 30, DefaultRootMemReserve, 1<<30 - DefaultRootMemReserve, nil},
		{DefaultRootMemReserve + 1, DefaultRootMemReserve, 1, nil},
		{DefaultRootMemReserve, DefaultRootMemReserve, 0, ErrReserveTooLarge},
		{10, 20, 0, ErrReserveTooLarge},
	} {
		got, err := PodsLimit(tc.total, tc.reserve)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("PodsLimit(%d, %d) = %d, %v; want %d, %v", tc.total, tc.reserve, got, err, tc.want, tc.err)
		}
	}
}

// hotplugMemory stands in for the VM's RAM changing size (memory hot-add is
// a hypervisor action the test cannot perform).
type hotplugMemory struct{ total uint64 }

func (m *hotplugMemory) TotalRAM() (uint64, error) { return m.total, nil }

func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// TestLayout sets up /gcs and /pods in every cgroup mode the machine has.
// Where the memory controller is missing the setup must fail clearly.
func TestLayout(t *testing.T) {
	for mode, root := range availableRoots(t) {
		t.Run(mode.String(), func(t *testing.T) {
			h := testHierarchy(t, root)
			if h.Mode() != mode {
				t.Fatalf("mode %v, want %v", h.Mode(), mode)
			}
			sleeper := startSleeper(t)
			total, err := Sysinfo{}.TotalRAM()
			if err != nil || total == 0 {
				t.Fatalf("TotalRAM = %d, %v", total, err)
			}
			mem := &hotplugMemory{total: total}
			l, err := SetupLayout(h, LayoutConfig{RootMemReserve: DefaultRootMemReserve, Memory: mem, Pid: sleeper.Process.Pid})
			if !hasMemory(h) {
				if !errors.Is(err, ErrNoMemoryController) {
					t.Fatalf("SetupLayout without memory controller: %v, want ErrNoMemoryController", err)
				}
				if (&Cgroup{h: h, path: DefaultPodsPath}).Exists() {
					t.Fatal("failed setup left the pods cgroup behind")
				}
				return
			}
			if err != nil {
				t.Fatalf("SetupLayout: %v", err)
			}
			want := total - DefaultRootMemReserve
			if got, err := l.Pods.MemoryLimit(); err != nil || got != want {
				t.Fatalf("pods limit = %d, %v; want %d", got, err, want)
			}
			procs, err := l.GCS.Procs()
			if err != nil || len(procs) != 1 || procs[0] != sleeper.Process.Pid {
				t.Fatalf("gcs procs = %v, %v; want [%d]", procs, err, sleeper.Process.Pid)
			}
			selfCg, err := os.ReadFile("/proc/" + strconv.Itoa(sleeper.Process.Pid) + "/cgroup")
			if err != nil || !strings.Contains(string(selfCg), filepath.Join(h.base, DefaultGCSPath)) {
				t.Fatalf("/proc/pid/cgroup = %q, %v; want it in %s", selfCg, err, DefaultGCSPath)
			}

			// Unchanged RAM: nothing to do.
			if got, changed, err := l.UpdatePodsLimit(); err != nil || changed || got != want {
				t.Fatalf("UpdatePodsLimit unchanged = %d, %v, %v", got, changed, err)
			}
			// Hot-remove 64 MiB: the limit follows.
			mem.total = total - 64<<20
			want = mem.total - DefaultRootMemReserve
			if got, changed, err := l.UpdatePodsLimit(); err != nil || !changed || got != want {
				t.Fatalf("UpdatePodsLimit after resize = %d, %v, %v; want %d, true", got, changed, err, want)
			}
			if got, err := l.Pods.MemoryLimit(); err != nil || got != want {
				t.Fatalf("pods limit after resize = %d, %v; want %d", got, err, want)
			}
			// RAM at the reserve: error, old limit kept.
			mem.total = DefaultRootMemReserve
			if _, _, err := l.UpdatePodsLimit(); !errors.Is(err, ErrReserveTooLarge) {
				t.Fatalf("UpdatePodsLimit with no RAM left: %v", err)
			}
			if l.PodsMemoryLimit() != want {
				t.Fatalf("limit changed after failed update: %d", l.PodsMemoryLimit())
			}

			// Teardown refuses while the GCS cgroup is occupied, then works.
			if err := l.Teardown(); err == nil {
				t.Fatal("Teardown succeeded with a process in /gcs")
			}
			_ = sleeper.Process.Kill()
			_ = sleeper.Wait()
			if err := l.Teardown(); err != nil {
				t.Fatalf("Teardown: %v", err)
			}
			if l.GCS.Exists() || l.Pods.Exists() {
				t.Fatal("cgroups still exist after Teardown")
			}
		})
	}
}
