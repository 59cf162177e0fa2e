package cgroup

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestStats reads a real cgroup holding a process that allocated 32 MiB.
func TestStats(t *testing.T) {
	for mode, root := range availableRoots(t) {
		t.Run(mode.String(), func(t *testing.T) {
			h := testHierarchy(t, root)
			cg, err := h.Create("/pods/c1")
			if err != nil {
				t.Fatal(err)
			}
			const size = 32 << 20
			hg := startHog(t, cg, size)
			hg.waitReady(t)

			threadsBefore := threads(t, hg.cmd.Process.Pid)
			m, err := h.Stats("/pods/c1")
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			threadsAfter := threads(t, hg.cmd.Process.Pid)
			if m.CPU == nil || m.CPU.Usage == nil || m.CPU.Usage.Total == 0 {
				t.Fatalf("no CPU usage: %+v", m.CPU)
			}
			if m.CPU.Throttling == nil {
				t.Error("no throttling entry")
			}
			if mode == ModeV1 && len(m.CPU.Usage.PerCPU) < runtime.NumCPU() {
				t.Errorf("per_cpu has %d entries for %d CPUs", len(m.CPU.Usage.PerCPU), runtime.NumCPU())
			}
			if _, ok := h.controllerDir("pids", "/"); ok && hasController(h, "pids") {
				// pids counts tasks: the hog's threads.
				if m.Pids == nil || m.Pids.Current == 0 || (threadsBefore == threadsAfter && m.Pids.Current != uint64(threadsBefore)) {
					t.Errorf("pids = %+v, hog has %d threads", m.Pids, threadsAfter)
				}
			}
			if hasMemory(h) {
				if m.Memory == nil || m.Memory.Usage == nil || m.Memory.Usage.Usage < size {
					t.Fatalf("memory usage %+v below %d", m.Memory, size)
				}
				if m.Memory.RSS < size/2 {
					t.Errorf("rss %d, want about %d", m.Memory.RSS, size)
				}
				if m.Memory.Usage.Limit == 0 || m.Memory.Swap == nil || m.Memory.Kernel == nil || m.Memory.KernelTCP == nil {
					t.Errorf("memory entries incomplete: %+v", m.Memory)
				}
				if m.MemoryOomControl == nil {
					t.Error("no memory_oom_control")
				}
			} else if m.Memory != nil {
				t.Errorf("memory stats without a memory controller: %+v", m.Memory)
			}
			if hasController(h, "hugetlb") {
				sizes, _ := os.ReadDir("/sys/kernel/mm/hugepages")
				if len(m.Hugetlb) != len(sizes) {
					t.Errorf("%d hugetlb entries, kernel has %d page sizes", len(m.Hugetlb), len(sizes))
				}
				for _, e := range m.Hugetlb {
					if !strings.HasSuffix(e.Pagesize, "B") {
						t.Errorf("hugetlb page size %q", e.Pagesize)
					}
				}
			}

			raw, err := h.StatsJSON("/pods/c1")
			if err != nil {
				t.Fatalf("StatsJSON: %v", err)
			}
			var generic map[string]json.RawMessage
			if err := json.Unmarshal(raw, &generic); err != nil {
				t.Fatal(err)
			}
			if string(generic["blkio"]) != "{}" || string(generic["rdma"]) != "{}" {
				t.Errorf("blkio/rdma not reset: %s", raw)
			}
			if _, ok := generic["network"]; ok {
				t.Errorf("network present: %s", raw)
			}
			if _, ok := generic["cpu"]; !ok {
				t.Errorf("cpu missing: %s", raw)
			}

			if _, err := h.Stats("/pods/missing"); !errors.Is(err, ErrNotExist) {
				t.Errorf("Stats of a missing cgroup: %v", err)
			}
		})
	}
}

// hasController reports whether the test cgroups get controller c's files.
func hasController(h *Hierarchy, c string) bool {
	if h.Mode() == ModeV1 {
		_, ok := h.controllers[c]
		return ok
	}
	ctrls, err := readControllers(h.v2Dir("/") + "/cgroup.controllers")
	if err != nil {
		return false
	}
	for _, x := range ctrls {
		if x == c {
			return true
		}
	}
	return false
}

// containerdNames are the JSON names of containerd's cgroup1 stats.Metrics
// (github.com/containerd/cgroups/v3/cgroup1/stats/metrics.pb.go), which the
// host decodes LCOWMetrics into.
var containerdNames = []string{
	"hugetlb", "pids", "cpu", "memory", "blkio", "rdma", "network", "cgroup_stats", "memory_oom_control",
	// HugetlbStat
	"usage", "max", "failcnt", "pagesize",
	// PidsStat
	"current", "limit",
	// CPUStat, CPUUsage, Throttle
	"usage", "throttling", "total", "kernel", "user", "per_cpu", "periods", "throttled_periods", "throttled_time",
	// MemoryStat
	"cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pg_pg_in", "pg_pg_out", "pg_fault",
	"pg_maj_fault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
	"hierarchical_memory_limit", "hierarchical_swap_limit", "total_cache", "total_rss", "total_rss_huge",
	"total_mapped_file", "total_dirty", "total_writeback", "total_pg_pg_in", "total_pg_pg_out", "total_pg_fault",
	"total_pg_maj_fault", "total_inactive_anon", "total_active_anon", "total_inactive_file", "total_active_file",
	"total_unevictable", "swap", "kernel_tcp",
	// MemoryOomControl
	"oom_kill_disable", "under_oom", "oom_kill",
	// BlkIOStat, BlkIOEntry
	"io_service_bytes_recursive", "io_serviced_recursive", "io_queued_recursive", "io_service_time_recursive",
	"io_wait_time_recursive", "io_merged_recursive", "io_time_recursive", "sectors_recursive",
	"op", "device", "major", "minor", "value",
	// RdmaStat, RdmaEntry
	"hca_handles", "hca_objects",
	// NetworkStat
	"name", "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped",
	// CgroupStats
	"nr_sleeping", "nr_running", "nr_stopped", "nr_uninterruptible", "nr_io_wait",
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Uint64, reflect.Uint32:
		v.SetUint(7)
	}
}

func collectKeys(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			into[k] = true
			collectKeys(val, into)
		}
	case []any:
		for _, val := range x {
			collectKeys(val, into)
		}
	}
}

// TestMetricsJSONNames checks that every field of a fully populated Metrics
// marshals under one of containerd's names and that every containerd name
// is produced.
func TestMetricsJSONNames(t *testing.T) {
	var m Metrics
	fill(reflect.ValueOf(&m).Elem())
	b, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	var decoded any
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	collectKeys(decoded, got)
	want := map[string]bool{}
	for _, n := range containerdNames {
		want[n] = true
	}
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 || len(missing) > 0 {
		t.Fatalf("JSON names differ from containerd's: extra %v, missing %v", extra, missing)
	}
}

func TestMarshalForHost(t *testing.T) {
	bigPerCPU := make([]uint64, 8000)
	for i := range bigPerCPU {
		bigPerCPU[i] = math.MaxUint64
	}
	var bigHugetlb []*HugetlbStat
	for i := 0; i < 1500; i++ {
		bigHugetlb = append(bigHugetlb, &HugetlbStat{Usage: math.MaxUint64, Max: math.MaxUint64, Pagesize: "2MB"})
	}
	for _, tc := range []struct {
		name                 string
		in                   *Metrics
		wantPerCPU, wantHuge bool
	}{
		{"small stays whole", &Metrics{CPU: &CPUStat{Usage: &CPUUsage{Total: 1, PerCPU: []uint64{1, 2}}}, Hugetlb: []*HugetlbStat{{Usage: 1}}}, true, true},
		{"per-cpu dropped first", &Metrics{CPU: &CPUStat{Usage: &CPUUsage{Total: 1, PerCPU: bigPerCPU}}, Hugetlb: []*HugetlbStat{{Usage: 1}}}, false, true},
		{"then hugetlb", &Metrics{CPU: &CPUStat{Usage: &CPUUsage{Total: 1, PerCPU: bigPerCPU}}, Hugetlb: bigHugetlb}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Network = []*NetworkStat{{Name: "eth0"}}
			tc.in.Blkio = &BlkIOStat{IoServicedRecursive: []*BlkIOEntry{{Op: "Read", Value: 1}}}
			b, err := MarshalForHost(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxStatsJSON {
				t.Fatalf("%d bytes over the limit", len(b))
			}
			var out Metrics
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if got := len(out.CPU.Usage.PerCPU) > 0; got != tc.wantPerCPU {
				t.Errorf("per_cpu kept = %v, want %v", got, tc.wantPerCPU)
			}
			if got := len(out.Hugetlb) > 0; got != tc.wantHuge {
				t.Errorf("hugetlb kept = %v, want %v", got, tc.wantHuge)
			}
			if out.CPU.Usage.Total != 1 || out.Network != nil || out.Blkio == nil || len(out.Blkio.IoServicedRecursive) != 0 || out.Rdma == nil {
				t.Errorf("trimmed wrongly: %s", b)
			}
			if tc.in.Network == nil || tc.in.Blkio.IoServicedRecursive == nil {
				t.Error("input was modified")
			}
		})
	}
}

func TestParseKeyValues(t *testing.T) {
	got := parseKeyValues([]byte("low 0\nhigh 5\nmax 2\noom 1\noom_kill 3\nbroken\nx y\nbig max\n"))
	want := map[string]uint64{"low": 0, "high": 5, "max": 2, "oom": 1, "oom_kill": 3, "big": math.MaxUint64}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseKeyValues = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"42\n", 42, true},
		{"max\n", math.MaxUint64, true},
		{"-1", 0, true},
		{"9223372036854771712", 9223372036854771712, true},
		{"", 0, false},
		{"abc", 0, false},
	} {
		got, err := parseUint(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseUint(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func threads(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
