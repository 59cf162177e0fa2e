package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is the cgroup version the hierarchy is driven as.
type Mode int

const (
	// ModeV1 is one mount per controller (or controller group), including
	// hybrid hosts that also carry a v2 "unified" mount.
	ModeV1 Mode = iota + 1
	// ModeV2 is a single unified cgroup2 mount at the root.
	ModeV2
)

// String returns "v1" or "v2", the values logged as cgroup_version.
func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeV2:
		return "v2"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// DefaultRoot is where the guest mounts its cgroup filesystems.
const DefaultRoot = "/sys/fs/cgroup"

// defaultPollInterval is how often v2 memory files are sampled.
const defaultPollInterval = time.Second

// Hierarchy is a cgroup filesystem root, driven as v1 or v2.
type Hierarchy struct {
	root string
	base string
	mode Mode
	// v1 only: mount directory names (e.g. "memory", "cpu,cpuacct",
	// "systemd"), sorted.
	mounts []string
	// v1 only: controller name -> mount directory name.
	controllers  map[string]string
	pollInterval time.Duration
}

// Option adjusts a Hierarchy.
type Option func(*Hierarchy)

// WithBase nests every cgroup path under base (an absolute path inside the
// hierarchy), so "/gcs" names <root>/[controller/]<base>/gcs.
func WithBase(base string) Option {
	return func(h *Hierarchy) { h.base = path.Clean("/" + base) }
}

// WithPollInterval sets how often cgroup v2 memory files are sampled for
// threshold and OOM events (default 1 s).
func WithPollInterval(d time.Duration) Option {
	return func(h *Hierarchy) {
		if d > 0 {
			h.pollInterval = d
		}
	}
}

// DetectMode reports how the cgroup filesystem at root must be driven: v2
// only when root itself is a cgroup2 mount, v1 when it holds cgroup v1
// mounts (whether or not a v2 mount sits beside them).
func DetectMode(root string) (Mode, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", root, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return ModeV2, nil
	}
	mounts, err := v1Mounts(root)
	if err != nil {
		return 0, err
	}
	if len(mounts) == 0 {
		return 0, fmt.Errorf("%s: %w", root, ErrNoCgroupFS)
	}
	return ModeV1, nil
}

// v1Mounts lists the directories directly under root that are cgroup v1
// mounts. Symlinks (e.g. "cpu" -> "cpu,cpuacct") are skipped so that each
// hierarchy appears once.
func v1Mounts(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	var mounts []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(root, e.Name()), &st); err != nil {
			continue
		}
		if st.Type == unix.CGROUP_SUPER_MAGIC {
			mounts = append(mounts, e.Name())
		}
	}
	sort.Strings(mounts)
	return mounts, nil
}

// Open detects the mode of the cgroup filesystem at root and returns a
// Hierarchy for it.
func Open(root string, opts ...Option) (*Hierarchy, error) {
	mode, err := DetectMode(root)
	if err != nil {
		return nil, err
	}
	h := &Hierarchy{root: root, base: "/", mode: mode, pollInterval: defaultPollInterval}
	for _, o := range opts {
		o(h)
	}
	if mode == ModeV1 {
		if h.mounts, err = v1Mounts(root); err != nil {
			return nil, err
		}
		h.controllers = make(map[string]string)
		for _, m := range h.mounts {
			for _, c := range strings.Split(m, ",") {
				h.controllers[c] = m
			}
		}
	}
	return h, nil
}

// Mode reports whether the hierarchy is driven as v1 or v2.
func (h *Hierarchy) Mode() Mode { return h.mode }

// Root returns the filesystem root the hierarchy was opened at.
func (h *Hierarchy) Root() string { return h.root }

// RequireMemory returns ErrNoMemoryController unless the memory controller
// can be used: a v1 "memory" mount, or "memory" in the v2 root's
// cgroup.controllers.
func (h *Hierarchy) RequireMemory() error {
	if h.mode == ModeV1 {
		if _, ok := h.controllers["memory"]; !ok {
			return fmt.Errorf("no cgroup v1 memory mount under %s: %w", h.root, ErrNoMemoryController)
		}
		return nil
	}
	ctrls, err := readControllers(filepath.Join(h.root, "cgroup.controllers"))
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		if c == "memory" {
			return nil
		}
	}
	return fmt.Errorf("memory not in %s/cgroup.controllers: %w", h.root, ErrNoMemoryController)
}

// EnableMemoryHierarchy writes 1 to memory.use_hierarchy of the base cgroup
// (the hierarchy's root in the guest) so that limits of parents bind their
// children. It must run before any child is created; it is a no-op on v2,
// where the hierarchy is always enforced. A missing file means the kernel
// lacks the v1 memory controller.
func (h *Hierarchy) EnableMemoryHierarchy() error {
	if h.mode == ModeV2 {
		return nil
	}
	dir, ok := h.controllerDir("memory", "/")
	if !ok {
		return fmt.Errorf("enable memory hierarchy: %w", ErrNoMemoryController)
	}
	// A base below the root (a private prefix) may not exist yet.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("enable memory hierarchy: %w", err)
	}
	p := filepath.Join(dir, "memory.use_hierarchy")
	if err := writeValue(p, "1"); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("enable memory hierarchy: %s: %w", p, ErrNoMemoryController)
		}
		return fmt.Errorf("enable memory hierarchy: %w", err)
	}
	return nil
}

// cleanPath validates a cgroup path and returns it cleaned and absolute. A
// relative path (as runc also accepts in linux.cgroupsPath) is taken from
// the hierarchy's base; an empty one or one with ".." is refused.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty cgroup path: %w", ErrInvalidPath)
	}
	c := path.Clean("/" + p)
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("%q leaves the hierarchy: %w", p, ErrInvalidPath)
		}
	}
	return c, nil
}

// v2Dir is the directory of cgroup path p in a v2 hierarchy.
func (h *Hierarchy) v2Dir(p string) string {
	return filepath.Join(h.root, h.base, p)
}

// mountDir is the directory of cgroup path p inside the v1 mount m.
func (h *Hierarchy) mountDir(m, p string) string {
	return filepath.Join(h.root, m, h.base, p)
}

// controllerDir returns the directory holding controller c's files for
// cgroup path p (v2: the single unified directory).
func (h *Hierarchy) controllerDir(c, p string) (string, bool) {
	if h.mode == ModeV2 {
		return h.v2Dir(p), true
	}
	m, ok := h.controllers[c]
	if !ok {
		return "", false
	}
	return h.mountDir(m, p), true
}

func readControllers(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read controllers: %w", err)
	}
	return strings.Fields(string(b)), nil
}
