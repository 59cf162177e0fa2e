package cgroup

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CPUWeight converts v1 cpu.shares to v2 cpu.weight the way runc and
// containerd's cgroups library do today (opencontainers/cgroups utils.go,
// containerd/cgroups cgroup2/utils.go), so that a pod cgroup the gcs
// writes and the container cgroups runc writes agree: on a log2 scale of
// the shares, a quadratic that maps the minimum 2 to 1, the default 1024 to
// the default 100 and the maximum 262144 to 10000, rounded up. Shares
// below 2 count as 2.
func CPUWeight(shares uint64) uint64 {
	switch {
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	return uint64(math.Ceil(math.Pow(10, (l*l+125*l)/612.0-7.0/34.0)))
}

// write is one interface file setting.
type write struct {
	ctrl, file, value string
}

// resourceWrites lists the files to write for res, in order, for the
// hierarchy's mode. v2 converts: memory limit -> memory.max, reservation
// -> memory.low, swap -> memory.swap.max, shares -> cpu.weight,
// quota/period -> cpu.max, blkio weight -> io.bfq.weight.
func resourceWrites(mode Mode, res *specs.LinuxResources) []write {
	var w []write
	if res == nil {
		return nil
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	u64 := func(v uint64) string { return strconv.FormatUint(v, 10) }
	if m := res.Memory; m != nil {
		if mode == ModeV2 {
			if m.Limit != nil {
				w = append(w, write{"memory", "memory.max", maxOrValue(*m.Limit)})
			}
			if m.Reservation != nil {
				w = append(w, write{"memory", "memory.low", maxOrValue(*m.Reservation)})
			}
			if m.Swap != nil {
				w = append(w, write{"memory", "memory.swap.max", maxOrValue(*m.Swap)})
			}
		} else {
			if m.Limit != nil {
				w = append(w, write{"memory", "memory.limit_in_bytes", i64(*m.Limit)})
			}
			if m.Swap != nil {
				w = append(w, write{"memory", "memory.memsw.limit_in_bytes", i64(*m.Swap)})
			}
			if m.Reservation != nil {
				w = append(w, write{"memory", "memory.soft_limit_in_bytes", i64(*m.Reservation)})
			}
		}
	}
	if c := res.CPU; c != nil {
		if mode == ModeV2 {
			if c.Shares != nil && *c.Shares > 0 {
				w = append(w, write{"cpu", "cpu.weight", u64(CPUWeight(*c.Shares))})
			}
			if c.Quota != nil && c.Period != nil {
				w = append(w, write{"cpu", "cpu.max", maxOrValue(*c.Quota) + " " + u64(*c.Period)})
			}
		} else {
			if c.Shares != nil && *c.Shares > 0 {
				w = append(w, write{"cpu", "cpu.shares", u64(*c.Shares)})
			}
			if c.Period != nil && *c.Period > 0 {
				w = append(w, write{"cpu", "cpu.cfs_period_us", u64(*c.Period)})
			}
			if c.Quota != nil && *c.Quota != 0 {
				w = append(w, write{"cpu", "cpu.cfs_quota_us", i64(*c.Quota)})
			}
		}
	}
	if p := res.Pids; p != nil && p.Limit != nil && *p.Limit > 0 {
		w = append(w, write{"pids", "pids.max", i64(*p.Limit)})
	}
	if b := res.BlockIO; b != nil && b.Weight != nil {
		if mode == ModeV2 {
			w = append(w, write{"io", "io.bfq.weight", strconv.Itoa(int(*b.Weight))})
		} else {
			w = append(w, write{"blkio", "blkio.weight", strconv.Itoa(int(*b.Weight))})
		}
	}
	return w
}

// maxOrValue renders a v2 limit: negative means unlimited ("max").
func maxOrValue(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// Update applies OCI resources to the cgroup (for the pod cgroups the GCS
// creates itself; container cgroups are runc's). Only the fields the GCS
// honours are written: memory limit, reservation and swap; cpu shares,
// quota and period; pids limit; block I/O weight. A v1 memory+swap limit
// lower than a new memory limit is written first, as the kernel requires
// memsw >= limit at all times.
func (c *Cgroup) Update(res *specs.LinuxResources) error {
	writes := resourceWrites(c.h.mode, res)
	for i := 0; i < len(writes); i++ {
		wr := writes[i]
		err := c.writeFile(wr)
		if err != nil && wr.file == "memory.limit_in_bytes" && i+1 < len(writes) && writes[i+1].file == "memory.memsw.limit_in_bytes" {
			// Raising the limit above the current memsw limit: swap first.
			if err2 := c.writeFile(writes[i+1]); err2 == nil {
				err = c.writeFile(wr)
				i++
			}
		}
		if err != nil {
			return fmt.Errorf("update cgroup %s: %w", c.path, err)
		}
	}
	return nil
}

func (c *Cgroup) writeFile(wr write) error {
	dir, ok := c.h.controllerDir(wr.ctrl, c.path)
	if !ok {
		return fmt.Errorf("%s: no %s controller: %w", wr.file, wr.ctrl, os.ErrNotExist)
	}
	p := filepath.Join(dir, wr.file)
	if err := writeValue(p, wr.value); err != nil {
		if errors.Is(err, os.ErrNotExist) && (wr.file == "memory.memsw.limit_in_bytes" || wr.file == "memory.swap.max") {
			return nil // no swap accounting: there is no swap to limit
		}
		if errors.Is(err, os.ErrNotExist) && wr.ctrl == "memory" {
			return fmt.Errorf("%s: %w", p, ErrNoMemoryController)
		}
		return fmt.Errorf("write %q to %s: %w", wr.value, p, err)
	}
	return nil
}

// CreateWithResources creates cgroup p and applies res to it, removing the
// cgroup again if the resources cannot be applied.
func (h *Hierarchy) CreateWithResources(p string, res *specs.LinuxResources) (*Cgroup, error) {
	existed := (&Cgroup{h: h, path: p}).Exists()
	c, err := h.Create(p)
	if err != nil {
		return nil, err
	}
	if err := c.Update(res); err != nil {
		if !existed {
			_ = c.Delete()
		}
		return nil, err
	}
	return c, nil
}
