package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// statsV2 reads a v2 cgroup's files and converts them to the v1 shape:
// memory usage/limit/peak, swap, kernel <- kernel_stack, kernel_tcp <- sock,
// rss <- anon, cache <- file and the page counters; oom_kill from
// memory.events; CPU microseconds scaled to nanoseconds; pids; hugetlb
// current/max per page size.
func (c *Cgroup) statsV2() (*Metrics, error) {
	dir := c.h.v2Dir(c.path)
	m := &Metrics{}
	var errs []error
	errs = append(errs, ignoreMissing(readPids(dir, m, false)))
	errs = append(errs, ignoreMissing(cpuV2(dir, m)))
	errs = append(errs, ignoreMissing(memoryV2(dir, m)))
	errs = append(errs, ignoreMissing(hugetlbV2(dir, m)))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
	}
	return m, nil
}

func cpuV2(dir string, m *Metrics) error {
	st, err := readKeyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return err
	}
	const nsPerUsec = 1000
	m.CPU = &CPUStat{
		Usage: &CPUUsage{
			Total:  st["usage_usec"] * nsPerUsec,
			User:   st["user_usec"] * nsPerUsec,
			Kernel: st["system_usec"] * nsPerUsec,
		},
		Throttling: &Throttle{
			Periods:          st["nr_periods"],
			ThrottledPeriods: st["nr_throttled"],
			ThrottledTime:    st["throttled_usec"] * nsPerUsec,
		},
	}
	return nil
}

// readOptional reads a counter that only some kernels offer (e.g.
// memory.peak); a missing file reads as 0.
func readOptional(file string) (uint64, error) {
	v, err := readUint(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

func memoryV2(dir string, m *Metrics) error {
	usage, err := readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return err
	}
	st, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return err
	}
	var vals [5]uint64
	for i, f := range []string{"memory.max", "memory.peak", "memory.swap.current", "memory.swap.max", "memory.swap.peak"} {
		if vals[i], err = readOptional(filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	limit, peak, swapUsage, swapLimit, swapPeak := vals[0], vals[1], vals[2], vals[3], vals[4]
	m.Memory = &MemoryStat{
		Usage:                   &MemoryEntry{Usage: usage, Limit: limit, Max: peak},
		Swap:                    &MemoryEntry{Usage: swapUsage, Limit: swapLimit, Max: swapPeak},
		Kernel:                  &MemoryEntry{Usage: st["kernel_stack"]},
		KernelTCP:               &MemoryEntry{Usage: st["sock"]},
		HierarchicalMemoryLimit: limit,
		HierarchicalSwapLimit:   swapLimit,
		RSS:                     st["anon"],
		Cache:                   st["file"],
		MappedFile:              st["file_mapped"],
		Dirty:                   st["file_dirty"],
		Writeback:               st["file_writeback"],
		PgFault:                 st["pgfault"],
		PgMajFault:              st["pgmajfault"],
		InactiveAnon:            st["inactive_anon"],
		ActiveAnon:              st["active_anon"],
		InactiveFile:            st["inactive_file"],
		ActiveFile:              st["active_file"],
		Unevictable:             st["unevictable"],
	}
	ev, err := readKeyValues(filepath.Join(dir, "memory.events"))
	if err != nil {
		return ignoreMissing(err)
	}
	m.MemoryOomControl = &MemoryOomControl{OomKill: ev["oom_kill"]}
	return nil
}

func hugetlbV2(dir string, m *Metrics) error {
	sizes, err := hugetlbSizes(dir, "current")
	if err != nil {
		return err
	}
	for _, size := range sizes {
		cur, err := readUint(filepath.Join(dir, "hugetlb."+size+".current"))
		if err != nil {
			return err
		}
		max, err := readUint(filepath.Join(dir, "hugetlb."+size+".max"))
		if err != nil {
			return err
		}
		m.Hugetlb = append(m.Hugetlb, &HugetlbStat{Usage: cur, Max: max, Pagesize: size})
	}
	return nil
}
