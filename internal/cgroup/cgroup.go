package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cgroup is one cgroup path (e.g. "/pods" or "/pods/<id>") in a Hierarchy.
// In v1 it spans the same path in every mounted hierarchy.
type Cgroup struct {
	h    *Hierarchy
	path string
}

// Path returns the cgroup's path relative to the hierarchy's base.
func (c *Cgroup) Path() string { return c.path }

// Hierarchy returns the hierarchy the cgroup lives in.
func (c *Cgroup) Hierarchy() *Hierarchy { return c.h }

// Create makes cgroup p (and missing parents) in every hierarchy. On v2 it
// first enables every available controller in the subtree_control of each
// ancestor so that the new cgroup gets their interface files. An existing
// cgroup is not an error.
func (h *Hierarchy) Create(p string) (*Cgroup, error) {
	p, err := cleanPath(p)
	if err != nil {
		return nil, err
	}
	c := &Cgroup{h: h, path: p}
	if h.mode == ModeV2 {
		if err := h.enableAncestors(p); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", p, err)
		}
		if err := os.MkdirAll(h.v2Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", p, err)
		}
		return c, nil
	}
	var made []string
	for _, m := range h.mounts {
		created, err := mkdirChain(h.mountDir(m, p))
		made = append(made, created...)
		if err != nil {
			removeDirs(made)
			return nil, fmt.Errorf("create cgroup %s in %s: %w", p, m, err)
		}
		if len(created) > 0 && splitHas(m, "cpuset") {
			if err := h.fillCpuset(m, p); err != nil {
				removeDirs(made)
				return nil, fmt.Errorf("create cgroup %s: %w", p, err)
			}
		}
	}
	return c, nil
}

// Load returns cgroup p if it exists.
func (h *Hierarchy) Load(p string) (*Cgroup, error) {
	p, err := cleanPath(p)
	if err != nil {
		return nil, err
	}
	c := &Cgroup{h: h, path: p}
	if !c.Exists() {
		return nil, fmt.Errorf("load cgroup %s: %w", p, ErrNotExist)
	}
	return c, nil
}

// Exists reports whether the cgroup's directory is present (v1: in the
// memory hierarchy, or the first hierarchy without one).
func (c *Cgroup) Exists() bool {
	var dir string
	if c.h.mode == ModeV2 {
		dir = c.h.v2Dir(c.path)
	} else if d, ok := c.h.controllerDir("memory", c.path); ok {
		dir = d
	} else if len(c.h.mounts) > 0 {
		dir = c.h.mountDir(c.h.mounts[0], c.path)
	} else {
		return false
	}
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}

// AddProcess moves process pid (with all its threads) into the cgroup.
func (c *Cgroup) AddProcess(pid int) error {
	v := strconv.Itoa(pid)
	for _, dir := range c.dirs() {
		if err := writeValue(filepath.Join(dir, "cgroup.procs"), v); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, c.path, err)
		}
	}
	return nil
}

// Procs lists the processes in the cgroup (v1: as seen by the memory
// hierarchy).
func (c *Cgroup) Procs() ([]int, error) {
	dir, ok := c.h.controllerDir("memory", c.path)
	if !ok {
		dirs := c.dirs()
		if len(dirs) == 0 {
			return nil, ErrNoCgroupFS
		}
		dir = dirs[0]
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("list procs of cgroup %s: %w", c.path, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("list procs of cgroup %s: %w", c.path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// SetMemoryLimit sets the cgroup's memory limit in bytes (v1
// memory.limit_in_bytes, v2 memory.max).
func (c *Cgroup) SetMemoryLimit(limit uint64) error {
	file := "memory.limit_in_bytes"
	if c.h.mode == ModeV2 {
		file = "memory.max"
	}
	dir, ok := c.h.controllerDir("memory", c.path)
	if !ok {
		return fmt.Errorf("set memory limit of %s: %w", c.path, ErrNoMemoryController)
	}
	p := filepath.Join(dir, file)
	if err := writeValue(p, strconv.FormatUint(limit, 10)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("set memory limit of %s: %s: %w", c.path, p, ErrNoMemoryController)
		}
		return fmt.Errorf("set memory limit of %s: %w", c.path, err)
	}
	return nil
}

// MemoryLimit reads the cgroup's memory limit. An unlimited v2 cgroup
// ("max") reports math.MaxUint64.
func (c *Cgroup) MemoryLimit() (uint64, error) {
	file := "memory.limit_in_bytes"
	if c.h.mode == ModeV2 {
		file = "memory.max"
	}
	dir, ok := c.h.controllerDir("memory", c.path)
	if !ok {
		return 0, fmt.Errorf("read memory limit of %s: %w", c.path, ErrNoMemoryController)
	}
	v, err := readUint(filepath.Join(dir, file))
	if err != nil {
		return 0, fmt.Errorf("read memory limit of %s: %w", c.path, err)
	}
	return v, nil
}

// Delete removes the cgroup's directory from every hierarchy. The cgroup
// must have no processes and no children. A cgroup that is already gone is
// not an error.
func (c *Cgroup) Delete() error {
	var errs []error
	for _, dir := range c.dirs() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete cgroup %s: %w", c.path, err)
	}
	return nil
}

// dirs lists the cgroup's directory in every hierarchy.
func (c *Cgroup) dirs() []string {
	if c.h.mode == ModeV2 {
		return []string{c.h.v2Dir(c.path)}
	}
	dirs := make([]string, 0, len(c.h.mounts))
	for _, m := range c.h.mounts {
		dirs = append(dirs, c.h.mountDir(m, c.path))
	}
	return dirs
}

// enableAncestors enables, in the cgroup.subtree_control of every ancestor
// of p from the filesystem root down, each controller that ancestor offers.
// Failing to enable memory is an error; other controllers are best effort
// (some, like cpuset or rt-constrained cpu, may legitimately refuse).
func (h *Hierarchy) enableAncestors(p string) error {
	rel := strings.Trim(filepath.Join(h.base, p), "/")
	parts := strings.Split(rel, "/")
	dir := h.root
	for i := 0; i < len(parts); i++ {
		if err := enableSubtree(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, parts[i])
		if i < len(parts)-1 {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("create %s: %w", dir, err)
			}
		}
	}
	return nil
}

func enableSubtree(dir string) error {
	avail, err := readControllers(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	enabled, err := readControllers(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	on := make(map[string]bool, len(enabled))
	for _, c := range enabled {
		on[c] = true
	}
	for _, c := range avail {
		if on[c] {
			continue
		}
		err := writeValue(filepath.Join(dir, "cgroup.subtree_control"), "+"+c)
		if err != nil && c == "memory" {
			return fmt.Errorf("enable memory controller in %s: %w", dir, err)
		}
	}
	return nil
}

// fillCpuset copies cpuset.cpus and cpuset.mems from the parent into a new
// v1 cpuset cgroup, and first into any empty ancestor below the mount: a
// cpuset cgroup with empty sets cannot hold tasks.
func (h *Hierarchy) fillCpuset(m, p string) error {
	top := filepath.Join(h.root, m)
	var chain []string
	for d := h.mountDir(m, p); d != top && d != "/"; d = filepath.Dir(d) {
		empty, err := cpusetEmpty(d)
		if err != nil {
			return err
		}
		if !empty {
			break
		}
		chain = append([]string{d}, chain...)
	}
	for _, d := range chain {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return fmt.Errorf("read %s: %w", f, err)
			}
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
			if err != nil {
				return fmt.Errorf("read parent %s: %w", f, err)
			}
			if err := writeValue(filepath.Join(d, f), string(b)); err != nil {
				return fmt.Errorf("write %s in %s: %w", f, d, err)
			}
		}
	}
	return nil
}

// mkdirChain creates dir and any missing parents, returning the
// directories it created, outermost first.
func mkdirChain(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
		if d == filepath.Dir(d) {
			break
		}
	}
	var made []string
	for _, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return made, err
		}
		made = append(made, d)
	}
	return made, nil
}

func cpusetEmpty(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cpuset.cpus"))
	if err != nil {
		return false, fmt.Errorf("read cpuset.cpus: %w", err)
	}
	return strings.TrimSpace(string(b)) == "", nil
}

func splitHas(list, item string) bool {
	for _, s := range strings.Split(list, ",") {
		if s == item {
			return true
		}
	}
	return false
}

func removeDirs(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}
