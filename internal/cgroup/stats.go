package cgroup

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// MaxStatsJSON bounds the marshalled statistics. They travel as a JSON
// string inside the GetProperties response (quotes escaped), which must fit
// a 64 KiB bridge message with everything else.
const MaxStatsJSON = 32 * 1024

// userHZ is the kernel's USER_HZ, the unit of cpuacct.stat.
const userHZ = 100

// Stats reads the statistics of cgroup p (e.g. a container's
// linux.cgroupsPath "/pods/<sandbox>/<id>") in cgroup-v1 shape; on v2 the
// native files are converted. Missing controller files are skipped.
func (h *Hierarchy) Stats(p string) (*Metrics, error) {
	c, err := h.Load(p)
	if err != nil {
		return nil, err
	}
	return c.Stats()
}

// StatsJSON is Stats prepared for the host: blkio and rdma reset to {},
// network dropped, and the result marshalled within MaxStatsJSON.
func (h *Hierarchy) StatsJSON(p string) (json.RawMessage, error) {
	m, err := h.Stats(p)
	if err != nil {
		return nil, err
	}
	return MarshalForHost(m)
}

// ForHost returns a copy of m trimmed as the GCS sends it: blkio and rdma
// replaced by empty objects and network removed.
func ForHost(m *Metrics) *Metrics {
	out := *m
	out.Blkio = &BlkIOStat{}
	out.Rdma = &RdmaStat{}
	out.Network = nil
	return &out
}

// MarshalForHost trims m with ForHost and marshals it. If the result is
// larger than MaxStatsJSON the per-CPU usage and then hugetlb entries are
// dropped; if it still does not fit, ErrStatsTooLarge is returned.
func MarshalForHost(m *Metrics) (json.RawMessage, error) {
	t := ForHost(m)
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("marshal cgroup stats: %w", err)
	}
	if len(b) <= MaxStatsJSON {
		return b, nil
	}
	if t.CPU != nil && t.CPU.Usage != nil {
		cpu, usage := *t.CPU, *t.CPU.Usage
		usage.PerCPU = nil
		cpu.Usage = &usage
		t.CPU = &cpu
	}
	if b, err = json.Marshal(t); err == nil && len(b) <= MaxStatsJSON {
		return b, nil
	}
	t.Hugetlb = nil
	if b, err = json.Marshal(t); err != nil {
		return nil, fmt.Errorf("marshal cgroup stats: %w", err)
	}
	if len(b) > MaxStatsJSON {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrStatsTooLarge)
	}
	return b, nil
}

// Stats reads the cgroup's statistics in cgroup-v1 shape.
func (c *Cgroup) Stats() (*Metrics, error) {
	if c.h.mode == ModeV2 {
		return c.statsV2()
	}
	return c.statsV1()
}

// ignoreMissing turns "file does not exist" into nil: a controller that is
// not mounted or not enabled simply contributes nothing.
func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (c *Cgroup) statsV1() (*Metrics, error) {
	m := &Metrics{}
	var errs []error
	if dir, ok := c.h.controllerDir("pids", c.path); ok {
		errs = append(errs, ignoreMissing(readPids(dir, m, true)))
	}
	if dir, ok := c.h.controllerDir("cpuacct", c.path); ok {
		errs = append(errs, ignoreMissing(cpuacctV1(dir, m)))
	}
	if dir, ok := c.h.controllerDir("cpu", c.path); ok {
		errs = append(errs, ignoreMissing(cpuV1(dir, m)))
	}
	if dir, ok := c.h.controllerDir("memory", c.path); ok {
		errs = append(errs, ignoreMissing(memoryV1(dir, m)))
	}
	if dir, ok := c.h.controllerDir("hugetlb", c.path); ok {
		errs = append(errs, ignoreMissing(hugetlbV1(dir, m)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
	}
	return m, nil
}

// readPids reads pids.current and pids.max, which v1 and v2 share. "max"
// reads as MaxUint64; v1's Metrics report no limit as 0, v2's (as
// containerd does) keep MaxUint64.
func readPids(dir string, m *Metrics, v1 bool) error {
	cur, err := readUint(filepath.Join(dir, "pids.current"))
	if err != nil {
		return err
	}
	limit, err := readUint(filepath.Join(dir, "pids.max"))
	if err != nil {
		return err
	}
	if v1 && limit == math.MaxUint64 {
		limit = 0
	}
	m.Pids = &PidsStat{Current: cur, Limit: limit}
	return nil
}

func cpuacctV1(dir string, m *Metrics) error {
	total, err := readUint(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return err
	}
	usage := &CPUUsage{Total: total}
	if b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage_percpu")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			v, err := parseUint(f)
			if err != nil {
				return fmt.Errorf("cpuacct.usage_percpu: %w", err)
			}
			usage.PerCPU = append(usage.PerCPU, v)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st, err := readKeyValues(filepath.Join(dir, "cpuacct.stat"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	const nsPerTick = 1_000_000_000 / userHZ
	usage.User = st["user"] * nsPerTick
	usage.Kernel = st["system"] * nsPerTick
	if m.CPU == nil {
		m.CPU = &CPUStat{}
	}
	m.CPU.Usage = usage
	return nil
}

func cpuV1(dir string, m *Metrics) error {
	st, err := readKeyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return err
	}
	if m.CPU == nil {
		m.CPU = &CPUStat{}
	}
	m.CPU.Throttling = &Throttle{
		Periods:          st["nr_periods"],
		ThrottledPeriods: st["nr_throttled"],
		ThrottledTime:    st["throttled_time"],
	}
	return nil
}

func memoryV1(dir string, m *Metrics) error {
	st, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return err
	}
	mem := &MemoryStat{
		Cache:                   st["cache"],
		RSS:                     st["rss"],
		RSSHuge:                 st["rss_huge"],
		MappedFile:              st["mapped_file"],
		Dirty:                   st["dirty"],
		Writeback:               st["writeback"],
		PgPgIn:                  st["pgpgin"],
		PgPgOut:                 st["pgpgout"],
		PgFault:                 st["pgfault"],
		PgMajFault:              st["pgmajfault"],
		InactiveAnon:            st["inactive_anon"],
		ActiveAnon:              st["active_anon"],
		InactiveFile:            st["inactive_file"],
		ActiveFile:              st["active_file"],
		Unevictable:             st["unevictable"],
		HierarchicalMemoryLimit: st["hierarchical_memory_limit"],
		HierarchicalSwapLimit:   st["hierarchical_memsw_limit"],
		TotalCache:              st["total_cache"],
		TotalRSS:                st["total_rss"],
		TotalRSSHuge:            st["total_rss_huge"],
		TotalMappedFile:         st["total_mapped_file"],
		TotalDirty:              st["total_dirty"],
		TotalWriteback:          st["total_writeback"],
		TotalPgPgIn:             st["total_pgpgin"],
		TotalPgPgOut:            st["total_pgpgout"],
		TotalPgFault:            st["total_pgfault"],
		TotalPgMajFault:         st["total_pgmajfault"],
		TotalInactiveAnon:       st["total_inactive_anon"],
		TotalActiveAnon:         st["total_active_anon"],
		TotalInactiveFile:       st["total_inactive_file"],
		TotalActiveFile:         st["total_active_file"],
		TotalUnevictable:        st["total_unevictable"],
	}
	for _, e := range []struct {
		prefix string
		dst    **MemoryEntry
	}{
		{"memory.", &mem.Usage},
		{"memory.memsw.", &mem.Swap},
		{"memory.kmem.", &mem.Kernel},
		{"memory.kmem.tcp.", &mem.KernelTCP},
	} {
		entry, err := memoryEntryV1(dir, e.prefix)
		if err != nil {
			return err
		}
		*e.dst = entry
	}
	m.Memory = mem
	oom, err := readKeyValues(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return ignoreMissing(err)
	}
	m.MemoryOomControl = &MemoryOomControl{
		OomKillDisable: oom["oom_kill_disable"],
		UnderOom:       oom["under_oom"],
		OomKill:        oom["oom_kill"],
	}
	return nil
}

// memoryEntryV1 reads <prefix>{usage_in_bytes,max_usage_in_bytes,failcnt,
// limit_in_bytes}. Counters the kernel does not offer (e.g. memsw without
// swap accounting) leave an empty entry.
func memoryEntryV1(dir, prefix string) (*MemoryEntry, error) {
	e := &MemoryEntry{}
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"usage_in_bytes", &e.Usage},
		{"max_usage_in_bytes", &e.Max},
		{"failcnt", &e.Failcnt},
		{"limit_in_bytes", &e.Limit},
	} {
		v, err := readUint(filepath.Join(dir, prefix+f.name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		*f.dst = v
	}
	return e, nil
}

// hugetlbSizes lists the page sizes ("2MB", "1GB") for which dir holds
// files named hugetlb.<size>.<suffix>.
func hugetlbSizes(dir, suffix string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "hugetlb.*."+suffix))
	if err != nil {
		return nil, err
	}
	var sizes []string
	for _, f := range matches {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "hugetlb."), "."+suffix)
		if name != "" && !strings.Contains(name, ".") {
			sizes = append(sizes, name)
		}
	}
	return sizes, nil
}

func hugetlbV1(dir string, m *Metrics) error {
	sizes, err := hugetlbSizes(dir, "usage_in_bytes")
	if err != nil {
		return err
	}
	for _, size := range sizes {
		s := &HugetlbStat{Pagesize: size}
		for _, f := range []struct {
			name string
			dst  *uint64
		}{
			{"usage_in_bytes", &s.Usage},
			{"max_usage_in_bytes", &s.Max},
			{"failcnt", &s.Failcnt},
		} {
			v, err := readUint(filepath.Join(dir, "hugetlb."+size+"."+f.name))
			if err != nil {
				return err
			}
			*f.dst = v
		}
		m.Hugetlb = append(m.Hugetlb, s)
	}
	return nil
}
