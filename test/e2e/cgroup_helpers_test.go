package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/internal/cgroup"
	"github.com/opengcs/opengcs/internal/gcstest"
)

// The gcs drives cgroups in the mode of /sys/fs/cgroup: v1 on a v1 or
// hybrid host (this repository's CI machine), v2 where the root is a
// cgroup2 mount (a fresh Debian 12, the utility VM). Every check below reads
// the files of that mode, so that it holds, and can fail, in both.

// cgroupV2 reports whether the gcs under test uses the unified hierarchy.
func cgroupV2(t *testing.T) bool {
	t.Helper()
	mode, err := cgroup.DetectMode(cgroup.DefaultRoot)
	if err != nil {
		t.Fatalf("cgroup mode: %v", err)
	}
	return mode == cgroup.ModeV2
}

// gcsCgroupDir is the directory of the gcs's cgroup path (below its
// private prefix): in the v1 controller's hierarchy, or the v2 one.
func gcsCgroupDir(t *testing.T, g *gcstest.GCS, controller, path string) string {
	if cgroupV2(t) {
		return filepath.Join(cgroup.DefaultRoot, g.CgroupPrefix, path)
	}
	return filepath.Join(cgroup.DefaultRoot, controller, g.CgroupPrefix, path)
}

// cgroupDir is gcsCgroupDir for the env's gcs.
func (e *env) cgroupDir(controller, path string) string {
	return gcsCgroupDir(e.t, e.g, controller, path)
}

// memoryLimitFile is the file holding the memory limit of a cgroup path.
func (e *env) memoryLimitFile(path string) string {
	if cgroupV2(e.t) {
		return filepath.Join(e.cgroupDir("memory", path), "memory.max")
	}
	return filepath.Join(e.cgroupDir("memory", path), "memory.limit_in_bytes")
}

// cpuFiles are the files and contents that CPU shares, and a quota with its
// period when quota is not 0, give a cgroup path.
func (e *env) cpuFiles(path string, shares uint64, quota int64, period uint64) map[string]string {
	dir := e.cgroupDir("cpu", path)
	if cgroupV2(e.t) {
		out := map[string]string{filepath.Join(dir, "cpu.weight"): strconv.FormatUint(cgroup.CPUWeight(shares), 10)}
		if quota != 0 {
			out[filepath.Join(dir, "cpu.max")] = fmt.Sprintf("%d %d", quota, period)
		}
		return out
	}
	out := map[string]string{filepath.Join(dir, "cpu.shares"): strconv.FormatUint(shares, 10)}
	if quota != 0 {
		out[filepath.Join(dir, "cpu.cfs_quota_us")] = strconv.FormatInt(quota, 10)
		out[filepath.Join(dir, "cpu.cfs_period_us")] = strconv.FormatUint(period, 10)
	}
	return out
}

// procCgroup returns the cgroup path of process pid that governs memory:
// the memory controller's line in v1, the unified "0::" line in v2.
func procCgroup(t *testing.T, pid int) string {
	t.Helper()
	data := readTrim(t, fmt.Sprintf("/proc/%d/cgroup", pid))
	v2 := cgroupV2(t)
	for _, line := range strings.Split(data, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if v2 && f[0] == "0" && f[1] == "" {
			return f[2]
		}
		if !v2 && f[1] == "memory" {
			return f[2]
		}
	}
	t.Fatalf("no memory cgroup line in %q", data)
	return ""
}
