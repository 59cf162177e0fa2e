package e2e

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestPodCgroups checks, without pod networking (so that it also runs in
// the utility VM, test/vm), where a pod's containers land in the cgroup
// tree and which resource files the gcs writes, in the cgroup mode of the
// machine: each member in /pods/<sid>/<id>; the sandbox's CPU shares on its
// own cgroup and on the pod's; a workload's memory limit; a
// ContainerConstraints update; the /pods limit of total RAM less the
// reserve.
func TestPodCgroups(t *testing.T) {
	const reserve = 104857600
	g := gcstest.Start(t, gcstest.Options{Args: []string{"-root-mem-reserve-bytes", strconv.Itoa(reserve)}})
	layer := filepath.Join(t.TempDir(), "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, c: connect(t, g), layer: layer}
	sid, wid := newID(t), newID(t)
	s := e.sandboxSpec(sid, "0e6b2f4c-1d3a-4b5c-8d7e-9f0a1b2c3d4e", podHostname)
	s.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
	e.create(sid, s)
	spid := e.startInit(sid)
	limit := int64(256 << 20)
	w := e.workloadSpec(sid, "app", spid, "sleep", "1000000")
	w.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	e.create(wid, w)
	e.startInit(wid)

	for _, id := range []string{sid, wid} {
		if procs := readTrim(t, filepath.Join(e.cgroupDir("memory", "/pods/"+sid+"/"+id), "cgroup.procs")); procs == "" {
			t.Errorf("cgroup /pods/%s/%s holds no process", sid, id)
		}
	}
	check := func(files map[string]string) {
		t.Helper()
		for path, want := range files {
			if got := readTrim(t, path); got != want {
				t.Errorf("%s = %s, want %s", path, got, want)
			}
		}
	}
	for _, cg := range []string{"/pods/" + sid + "/" + sid, "/pods/" + sid} {
		check(e.cpuFiles(cg, sandboxPauseShare, 0, 0))
	}
	wcg := "/pods/" + sid + "/" + wid
	check(map[string]string{e.memoryLimitFile(wcg): strconv.FormatInt(limit, 10)})

	newLimit, shares, quota, period := int64(128<<20), uint64(256), int64(50000), uint64(100000)
	upd := &prot.LCOWContainerConstraints{Linux: specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &newLimit},
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
	}}
	if err := e.c.Modify(ctxT(t, 30*time.Second), wid, prot.RequestTypeUpdate, prot.ResourceContainerConstraints, upd); err != nil {
		t.Fatalf("ContainerConstraints Update: %v", err)
	}
	files := e.cpuFiles(wcg, shares, quota, period)
	files[e.memoryLimitFile(wcg)] = strconv.FormatInt(newLimit, 10)
	check(files)
	// The sandbox keeps its own.
	check(e.cpuFiles("/pods/"+sid+"/"+sid, sandboxPauseShare, 0, 0))

	check(map[string]string{e.memoryLimitFile("/pods"): strconv.FormatUint(totalRAM(t)-reserve, 10)})
}
