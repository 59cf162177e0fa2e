package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCPUWeight(t *testing.T) {
	for _, tc := range []struct{ shares, want uint64 }{
		// The values runc writes for the same shares.
		{0, 1}, {1, 1}, {2, 1}, {3, 2}, {256, 35}, {1024, 100}, {2048, 174}, {131072, 5478}, {262143, 10000}, {262144, 10000}, {1 << 20, 10000},
	} {
		if got := CPUWeight(tc.shares); got != tc.want {
			t.Errorf("CPUWeight(%d) = %d, want %d", tc.shares, got, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestResourceWritesV2(t *testing.T) {
	res := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(-1)), Swap: ptr(int64(0))},
		CPU:     &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(-1)), Period: ptr(uint64(100000))},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(0))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300))},
	}
	got := resourceWrites(ModeV2, res)
	want := []write{
		{"memory", "memory.max", "67108864"},
		{"memory", "memory.low", "max"},
		{"memory", "memory.swap.max", "0"},
		{"cpu", "cpu.weight", "100"},
		{"cpu", "cpu.max", "max 100000"},
		{"io", "io.bfq.weight", "300"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v2 writes\n got %v\nwant %v", got, want)
	}
	if w := resourceWrites(ModeV2, nil); w != nil {
		t.Fatalf("nil resources write %v", w)
	}
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestUpdate applies resources to real cgroups and reads the files back.
func TestUpdate(t *testing.T) {
	for mode, root := range availableRoots(t) {
		t.Run(mode.String(), func(t *testing.T) {
			h := testHierarchy(t, root)
			res := &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20))},
				CPU:    &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))},
				Pids:   &specs.LinuxPids{Limit: ptr(int64(42))},
			}
			if !hasMemory(h) {
				_, err := h.CreateWithResources("/pods/sandbox", res)
				if !errors.Is(err, ErrNoMemoryController) {
					t.Fatalf("CreateWithResources without memory controller: %v", err)
				}
				if (&Cgroup{h: h, path: "/pods/sandbox"}).Exists() {
					t.Fatal("failed CreateWithResources left the cgroup behind")
				}
				return
			}
			cg, err := h.CreateWithResources("/pods/sandbox", res)
			if err != nil {
				t.Fatalf("CreateWithResources: %v", err)
			}
			want := map[string]string{}
			if mode == ModeV1 {
				want["memory/memory.limit_in_bytes"] = "67108864"
				want["memory/memory.soft_limit_in_bytes"] = "33554432"
				want["cpu/cpu.shares"] = "512"
				want["cpu/cpu.cfs_quota_us"] = "50000"
				want["cpu/cpu.cfs_period_us"] = "100000"
				want["pids/pids.max"] = "42"
			} else {
				want["memory/memory.max"] = "67108864"
				want["memory/memory.low"] = "33554432"
				want["cpu/cpu.weight"] = "59" // 512 shares, as runc converts them
				want["cpu/cpu.max"] = "50000 100000"
				want["pids/pids.max"] = "42"
			}
			for k, v := range want {
				ctrl, file, _ := strings.Cut(k, "/")
				dir, ok := h.controllerDir(ctrl, cg.Path())
				if !ok {
					continue // controller not mounted on this machine
				}
				if got := readTrim(t, filepath.Join(dir, file)); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			// Raising the limit past the v1 memsw limit needs the swap write
			// first; lowering both works in the listed order.
			up := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(128 << 20)), Swap: ptr(int64(128 << 20))}}
			if err := cg.Update(up); err != nil {
				t.Fatalf("raise memory: %v", err)
			}
			if got, _ := cg.MemoryLimit(); got != 128<<20 {
				t.Fatalf("limit after raise = %d", got)
			}
		})
	}
}
