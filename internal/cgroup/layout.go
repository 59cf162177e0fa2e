package cgroup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
)

// Default cgroup paths and sizes of the GCS layout.
const (
	DefaultGCSPath        = "/gcs"
	DefaultPodsPath       = "/pods"
	DefaultRootMemReserve = 75 << 20 // -root-mem-reserve-bytes
	DefaultGCSMemLimit    = 50 << 20 // -gcs-mem-limit-bytes (a threshold)
	// DefaultLimitInterval is how often the pods limit is re-evaluated.
	DefaultLimitInterval = time.Minute
)

// MemorySource reports the VM's total RAM. Sysinfo is the real one; the
// seam exists because the amount changes with memory hot-add.
type MemorySource interface {
	TotalRAM() (uint64, error)
}

// Sysinfo reads total RAM with sysinfo(2).
type Sysinfo struct{}

// TotalRAM returns totalram x mem_unit.
func (Sysinfo) TotalRAM() (uint64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, fmt.Errorf("sysinfo: %w", err)
	}
	return uint64(si.Totalram) * uint64(si.Unit), nil
}

// PodsLimit is the memory limit of the containers' parent cgroup: total RAM
// minus the root reserve. It fails when nothing would be left.
func PodsLimit(total, reserve uint64) (uint64, error) {
	if total <= reserve {
		return 0, fmt.Errorf("total %d, reserve %d: %w", total, reserve, ErrReserveTooLarge)
	}
	return total - reserve, nil
}

// LayoutConfig describes the GCS's cgroups.
type LayoutConfig struct {
	// GCSPath is the GCS's own cgroup (default "/gcs"). It has no limit.
	GCSPath string
	// PodsPath is the parent of every container cgroup (default "/pods";
	// opengcs used "/containers").
	PodsPath string
	// RootMemReserve is the memory kept out of the pods limit.
	RootMemReserve uint64
	// Memory reports total RAM; nil means Sysinfo.
	Memory MemorySource
	// Pid, if not 0, is moved into the GCS cgroup (the GCS passes its own
	// pid).
	Pid int
}

// Layout is the GCS's cgroup tree: its own cgroup and the containers'
// parent with a memory limit that follows the VM's RAM.
type Layout struct {
	GCS  *Cgroup
	Pods *Cgroup

	cfg LayoutConfig

	mu    sync.Mutex
	limit uint64
}

// SetupLayout checks that the memory controller is usable, enables the v1
// memory hierarchy, creates the pods cgroup with its limit and the GCS
// cgroup, and moves cfg.Pid into the latter. On failure it removes what it
// created. Any error is fatal for the GCS.
func SetupLayout(h *Hierarchy, cfg LayoutConfig) (_ *Layout, err error) {
	if cfg.GCSPath == "" {
		cfg.GCSPath = DefaultGCSPath
	}
	if cfg.PodsPath == "" {
		cfg.PodsPath = DefaultPodsPath
	}
	if cfg.Memory == nil {
		cfg.Memory = Sysinfo{}
	}
	if err := h.RequireMemory(); err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	if err := h.EnableMemoryHierarchy(); err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	total, err := cfg.Memory.TotalRAM()
	if err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	limit, err := PodsLimit(total, cfg.RootMemReserve)
	if err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	l := &Layout{cfg: cfg}
	if l.Pods, err = h.Create(cfg.PodsPath); err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	defer func() {
		if err != nil {
			_ = l.Teardown()
		}
	}()
	if err := l.Pods.SetMemoryLimit(limit); err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	l.limit = limit
	if l.GCS, err = h.Create(cfg.GCSPath); err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	if cfg.Pid != 0 {
		if err := l.GCS.AddProcess(cfg.Pid); err != nil {
			return nil, fmt.Errorf("cgroup layout: %w", err)
		}
	}
	return l, nil
}

// PodsMemoryLimit returns the limit last applied to the pods cgroup.
func (l *Layout) PodsMemoryLimit() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// UpdatePodsLimit recomputes the pods limit from the current total RAM and
// applies it if it changed (PodCgroupMemoryLimit Update and the periodic
// re-evaluation). It returns the limit in force and whether it changed.
func (l *Layout) UpdatePodsLimit() (uint64, bool, error) {
	total, err := l.cfg.Memory.TotalRAM()
	if err != nil {
		return 0, false, fmt.Errorf("update pods memory limit: %w", err)
	}
	limit, err := PodsLimit(total, l.cfg.RootMemReserve)
	if err != nil {
		return 0, false, fmt.Errorf("update pods memory limit: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit == l.limit {
		return limit, false, nil
	}
	if err := l.Pods.SetMemoryLimit(limit); err != nil {
		return l.limit, false, fmt.Errorf("update pods memory limit: %w", err)
	}
	l.limit = limit
	return limit, true, nil
}

// RunLimitUpdater calls UpdatePodsLimit every interval until ctx ends,
// logging changes and failures.
func (l *Layout) RunLimitUpdater(ctx context.Context, interval time.Duration, log *logrus.Entry) {
	if log == nil {
		log = logging.Discard()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		limit, changed, err := l.UpdatePodsLimit()
		switch {
		case err != nil:
			log.WithError(err).WithField("cgroup", l.Pods.Path()).Error("failed to update pods memory limit")
		case changed:
			log.WithFields(logrus.Fields{"cgroup": l.Pods.Path(), "limitBytes": limit}).Info("updated pods memory limit")
		}
	}
}

// Teardown removes the GCS and pods cgroups. Both must be empty.
func (l *Layout) Teardown() error {
	var errs []error
	for _, c := range []*Cgroup{l.GCS, l.Pods} {
		if c != nil {
			errs = append(errs, c.Delete())
		}
	}
	return errors.Join(errs...)
}
