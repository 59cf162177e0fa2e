package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

const (
	podNamespace = "3F1D3C3E-9A4B-4C8E-8F59-1B2F5A7E9D10" // HNS namespace, as the adapter carries it
	podHostname  = "web-0.pods.test"
	nic0         = "a1b2c3d4-0000-4000-8000-00155d0a0b0c"
	nic1         = "b2c3d4e5-0000-4000-8000-00155d0a0b0d"
	nic2         = "c3d4e5f6-0000-4000-8000-00155d0a0b0e"
)

// podHosts is the hosts file of a sandbox named podHostname
// (docs/lifecycle.md, "Sandbox spec setup").
const podHosts = "127.0.0.1 localhost\n" +
	"127.0.0.1 web-0.pods.test web-0\n" +
	"\n" +
	"# The following lines are desirable for IPv6 capable hosts\n" +
	"::1     ip6-localhost ip6-loopback\n" +
	"fe00::0 ip6-localnet\n" +
	"ff00::0 ip6-mcastprefix\n" +
	"ff02::1 ip6-allnodes\n" +
	"ff02::2 ip6-allrouters\n"

const podResolvConf = "search svc.cluster.local cluster.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\n"

// firstAdapter is the pod's eth0 as BuildLCOWNetworkAdapter would send it.
func firstAdapter() *prot.LCOWNetworkAdapter {
	return &prot.LCOWNetworkAdapter{
		NamespaceID:   podNamespace,
		ID:            strings.ToUpper(nic0),
		MacAddress:    "00-15-5D-0A-0B-0C",
		DNSSuffix:     "Svc.Cluster.Local,cluster.local",
		DNSServerList: "10.0.0.10, 10.0.0.11",
		EncapOverhead: 50,
		IPConfigs:     []prot.IPConfig{{IPAddress: "10.88.0.7", PrefixLength: 24}},
		Routes:        []prot.Route{{NextHop: "10.88.0.1", DestinationPrefix: "0.0.0.0/0"}},
	}
}

// pod is a running sandbox and its two workloads.
type pod struct {
	sid, w1, w2 string
	sandboxPid  uint32
	w1Pid       uint32
	w2Pid       uint32
	hostPid     int // the pause process, seen from the test
}

// TestPodEndToEnd drives a pod exactly as a shim v1 host does: a NIC is
// hot-added and announced before the sandbox, the sandbox is created and
// its pause process started, two workloads join it through namespace paths
// of the pause process; then a second NIC is hot-added, a bad one is
// refused and rolled back, NICs are removed, constraints are updated, and
// the pod is torn down.
func TestPodEndToEnd(t *testing.T) {
	n := newNetEnv(t, "-root-mem-reserve-bytes", "104857600")
	e := n.env
	peer0 := n.addNIC(t, nic0, "eth0", 0)

	// Network Add before the sandbox: recorded, not moved yet.
	if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, firstAdapter()); err != nil {
		t.Fatalf("Network Add before the sandbox: %v", err)
	}
	if l, ok := linksIn(t, n.gcsPid)["eth0"]; !ok || len(l.inet()) != 0 || l.up() {
		t.Fatalf("eth0 before the sandbox exists: %v, %+v; want it untouched in the UVM namespace", ok, l)
	}

	p := startPod(t, e)
	tt := func(name string, f func(t *testing.T, e *env)) {
		t.Run(name, func(t *testing.T) { f(t, e.podForTest(t)) })
	}

	tt("NICBeforeSandboxLandsInPodNamespace", func(t *testing.T, e *env) {
		gcsLinks := linksIn(t, n.gcsPid)
		if _, ok := gcsLinks["eth0"]; ok {
			t.Fatal("eth0 is still in the UVM namespace after the sandbox was created")
		}
		if _, ok := gcsLinks[peer0]; !ok {
			t.Fatalf("the peer %s left the UVM namespace", peer0)
		}
		l, ok := linksIn(t, p.hostPid)["eth0"]
		if !ok {
			t.Fatal("eth0 is not in the pod's network namespace")
		}
		if l.MTU != 1450 || !l.up() || strings.Join(l.inet(), ",") != "10.88.0.7/24" {
			t.Fatalf("eth0 in the pod: mtu %d, up %t, inet %v; want 1450, true, 10.88.0.7/24", l.MTU, l.up(), l.inet())
		}
		if lo := linksIn(t, p.hostPid)["lo"]; !lo.up() {
			t.Fatal("loopback of the pod is down")
		}
		if !hasRoute(routesIn(t, p.hostPid), ipRoute{Dst: "default", Gateway: "10.88.0.1", Dev: "eth0"}) {
			t.Fatalf("no default route via 10.88.0.1 in the pod: %+v", routesIn(t, p.hostPid))
		}
		// What a workload sees of it.
		out := e.podMustSh(p.w1, "/bin/busybox ip -o -4 addr show dev eth0")
		mustContain(t, out, "inet 10.88.0.7/24")
	})

	tt("SandboxWritesPodFiles", func(t *testing.T, e *env) {
		for name, want := range map[string]string{"hostname": podHostname + "\n", "hosts": podHosts, "resolv.conf": podResolvConf} {
			path, err := e.g.Root(filepath.Join(bundleOf(p.sid), name))
			if err != nil {
				t.Fatal(err)
			}
			if got := podReadFile(t, path); got != want {
				t.Errorf("sandbox root %s = %q, want %q", name, got, want)
			}
		}
		// The sandbox itself gets no bind mounts of them.
		if out := e.podMustSh(p.sid, "grep -E ' /etc/(hostname|hosts|resolv.conf) ' /proc/self/mountinfo || true"); out != "" {
			t.Errorf("the sandbox has the pod files bind-mounted: %s", out)
		}
	})

	tt("WorkloadsSeePodFiles", func(t *testing.T, e *env) {
		for _, w := range []string{p.w1, p.w2} {
			if got := e.podMustSh(w, "cat /etc/hostname"); got != podHostname+"\n" {
				t.Errorf("%s /etc/hostname = %q", w, got)
			}
			if got := e.podMustSh(w, "hostname"); got != podHostname+"\n" {
				t.Errorf("%s hostname = %q (UTS namespace not the pod's)", w, got)
			}
			if got := e.podMustSh(w, "cat /etc/hosts"); got != podHosts {
				t.Errorf("%s /etc/hosts = %q", w, got)
			}
			if got := e.podMustSh(w, "cat /etc/resolv.conf"); got != podResolvConf {
				t.Errorf("%s /etc/resolv.conf = %q", w, got)
			}
		}
	})

	tt("WorkloadsShareSandboxNamespaces", func(t *testing.T, e *env) {
		const script = "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done"
		sb := strings.Fields(e.podMustSh(p.sid, script))
		w1 := strings.Fields(e.podMustSh(p.w1, script))
		w2 := strings.Fields(e.podMustSh(p.w2, script))
		if len(sb) != 4 || len(w1) != 4 || len(w2) != 4 {
			t.Fatalf("namespaces: %v %v %v", sb, w1, w2)
		}
		for i, kind := range []string{"net", "ipc", "uts"} {
			if w1[i] != sb[i] || w2[i] != sb[i] {
				t.Errorf("%s namespace: sandbox %s, workloads %s %s", kind, sb[i], w1[i], w2[i])
			}
		}
		if w1[3] == sb[3] || w2[3] == sb[3] || w1[3] == w2[3] {
			t.Errorf("pid namespaces are shared: sandbox %s, workloads %s %s", sb[3], w1[3], w2[3])
		}
		outside, err := os.Readlink("/proc/" + strconv.Itoa(p.hostPid) + "/ns/net")
		if err != nil || outside != sb[0] {
			t.Errorf("pause process netns %q (%v), sandbox reports %s", outside, err, sb[0])
		}
		gcsNet, _ := os.Readlink("/proc/" + strconv.Itoa(n.gcsPid) + "/ns/net")
		if gcsNet == sb[0] {
			t.Error("the pod shares the UVM's network namespace")
		}
	})

	tt("WorkloadsTalkOverLoopback", func(t *testing.T, e *env) {
		// The listener's stdin stays open: busybox nc closes the connection
		// as soon as its own stdin ends.
		srv := e.exec(p.w1, procArgs("/bin/busybox", "nc", "-l", "-p", "8080"), true, true, false)
		e.podMustSh(p.w2, `i=0; until echo hello-from-w2 | /bin/busybox nc 127.0.0.1 8080; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.05; done`)
		if got := readAll(t, srv.stdio, hostclient.StdOut); got != "hello-from-w2\n" {
			t.Fatalf("w1 received %q", got)
		}
		if code := e.wait(p.w1, srv.pid); code != 0 {
			t.Fatalf("listener exit %d", code)
		}
	})

	tt("SandboxMountsAreShared", func(t *testing.T, e *env) {
		e.podMustSh(p.w1, "echo from-w1 > /shared/note")
		if got := e.podMustSh(p.w2, "cat /shared/note"); got != "from-w1\n" {
			t.Fatalf("w2 reads %q from the sandbox mount", got)
		}
		path, _ := e.g.Root(filepath.Join(bundleOf(p.sid), "sandboxMounts", "shared", "note"))
		if got := podReadFile(t, path); got != "from-w1\n" {
			t.Fatalf("sandboxMounts/shared/note in the pod root = %q", got)
		}
	})

	tt("CgroupsUnderPod", func(t *testing.T, e *env) {
		for _, id := range []string{p.sid, p.w1, p.w2} {
			dir := e.cgroupDir("memory", "/pods/"+p.sid+"/"+id)
			if procs := readTrim(t, filepath.Join(dir, "cgroup.procs")); procs == "" {
				t.Errorf("cgroup /pods/%s/%s holds no process", p.sid, id)
			}
		}
		// The sandbox's resources apply to its own cgroup and, as the pod
		// cgroup's, to the whole pod (docs/lifecycle.md, "Create, step by
		// step": Pod bookkeeping).
		for _, cg := range []string{"/pods/" + p.sid + "/" + p.sid, "/pods/" + p.sid} {
			for path, want := range e.cpuFiles(cg, 2, 0, 0) {
				if got := readTrim(t, path); got != want {
					t.Errorf("%s = %s, want %s from the sandbox spec's 2 shares", path, got, want)
				}
			}
		}
		if got := readTrim(t, e.memoryLimitFile("/pods/"+p.sid+"/"+p.w1)); got != "268435456" {
			t.Errorf("w1 memory limit = %s, want the spec's 268435456", got)
		}
	})

	tt("HotAddedNICLands", func(t *testing.T, e *env) {
		n.addNIC(t, nic1, "eth1", 1)
		a := &prot.LCOWNetworkAdapter{
			NamespaceID: strings.ToLower(podNamespace), ID: nic1, MacAddress: "00-15-5D-0A-0B-0D",
			IPConfigs: []prot.IPConfig{{IPAddress: "10.99.0.5", PrefixLength: 16}},
			Routes:    []prot.Route{{NextHop: "10.99.0.1", DestinationPrefix: "10.100.0.0/16", Metric: 10}},
		}
		if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, a); err != nil {
			t.Fatalf("hot add: %v", err)
		}
		l, ok := linksIn(t, p.hostPid)["eth1"]
		if !ok || !l.up() || strings.Join(l.inet(), ",") != "10.99.0.5/16" || l.MTU != 1500 {
			t.Fatalf("eth1 in the pod: %v %+v", ok, l)
		}
		if !hasRoute(routesIn(t, p.hostPid), ipRoute{Dst: "10.100.0.0/16", Gateway: "10.99.0.1", Dev: "eth1", Metric: 10}) {
			t.Fatalf("route of eth1 missing: %+v", routesIn(t, p.hostPid))
		}
		if _, ok := linksIn(t, n.gcsPid)["eth1"]; ok {
			t.Fatal("eth1 stayed in the UVM namespace")
		}
		mustContain(t, e.podMustSh(p.w2, "/bin/busybox ip -o -4 addr show dev eth1"), "inet 10.99.0.5/16")
		// eth0 was not touched again.
		if l := linksIn(t, p.hostPid)["eth0"]; l.MTU != 1450 || strings.Join(l.inet(), ",") != "10.88.0.7/24" {
			t.Fatalf("eth0 changed by the hot add: %+v", l)
		}
	})

	tt("BadHotAddRolledBack", func(t *testing.T, e *env) {
		n.addNIC(t, nic2, "eth2", 2)
		bad := &prot.LCOWNetworkAdapter{
			NamespaceID: podNamespace, ID: nic2, EncapOverhead: 1480,
			IPConfigs: []prot.IPConfig{{IPAddress: "10.77.0.2", PrefixLength: 24}},
		}
		err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, bad)
		mustFailWith(t, "EncapOverhead leaving MTU 20", err, prot.HrFail, "EncapOverhead 1480")
		l, ok := linksIn(t, n.gcsPid)["eth2"]
		if !ok || l.up() || l.MTU != 1500 || len(l.inet()) != 0 {
			t.Fatalf("eth2 after the failed add: in the UVM namespace %t, %+v; want it back untouched", ok, l)
		}
		if _, ok := linksIn(t, p.hostPid)["eth2"]; ok {
			t.Fatal("eth2 stayed in the pod after the failed add")
		}
		// Nothing was recorded: the same id is accepted with good settings.
		bad.EncapOverhead = 0
		if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, bad); err != nil {
			t.Fatalf("add after a failed add: %v", err)
		}
		if l := linksIn(t, p.hostPid)["eth2"]; strings.Join(l.inet(), ",") != "10.77.0.2/24" {
			t.Fatalf("eth2 in the pod: %+v", l)
		}
		// A second Add of a recorded id is refused and changes nothing.
		err = e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, firstAdapter())
		mustFailWith(t, "duplicate adapter", err, prot.HrFail, "already")
		if l := linksIn(t, p.hostPid)["eth0"]; l.MTU != 1450 || strings.Join(l.inet(), ",") != "10.88.0.7/24" {
			t.Fatalf("eth0 changed by a refused add: %+v", l)
		}
	})

	tt("AdapterRemoval", func(t *testing.T, e *env) {
		rm := &prot.LCOWNetworkAdapter{NamespaceID: podNamespace, ID: nic1}
		if err := e.podModify(prot.RequestTypeRemove, prot.ResourceNetwork, rm); err != nil {
			t.Fatalf("Network Remove: %v", err)
		}
		// Unknown adapter and unknown namespace: success, as for the reference.
		if err := e.podModify(prot.RequestTypeRemove, prot.ResourceNetwork, rm); err != nil {
			t.Fatalf("second Network Remove: %v", err)
		}
		if err := e.podModify(prot.RequestTypeRemove, prot.ResourceNetwork, &prot.LCOWNetworkAdapter{NamespaceID: "00000000-1111-2222-3333-444444444444", ID: nic1}); err != nil {
			t.Fatalf("Network Remove of an unknown namespace: %v", err)
		}
		// The host then hot-removes the NIC.
		nsenterNet(t, p.hostPid, "ip", "link", "del", "eth1")
		if err := os.RemoveAll(filepath.Join(n.sysfs, "bus", "vmbus", "devices", nic1)); err != nil {
			t.Fatal(err)
		}
		// The record forgot it: a NIC hot-added again under the same id lands.
		n.addNIC(t, nic1, "eth1", 1)
		a := &prot.LCOWNetworkAdapter{NamespaceID: podNamespace, ID: nic1, IPConfigs: []prot.IPConfig{{IPAddress: "10.99.0.6", PrefixLength: 16}}}
		if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, a); err != nil {
			t.Fatalf("re-add after removal: %v", err)
		}
		if l := linksIn(t, p.hostPid)["eth1"]; strings.Join(l.inet(), ",") != "10.99.0.6/16" {
			t.Fatalf("re-added eth1: %+v", l)
		}
	})

	tt("ContainerConstraints", func(t *testing.T, e *env) {
		ctx := ctxT(t, 30*time.Second)
		limit, shares, quota, period := int64(128<<20), uint64(256), int64(50000), uint64(100000)
		upd := &prot.LCOWContainerConstraints{Linux: specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &limit},
			CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
		}}
		if err := e.c.Modify(ctx, p.w1, prot.RequestTypeUpdate, prot.ResourceContainerConstraints, upd); err != nil {
			t.Fatalf("ContainerConstraints Update: %v", err)
		}
		cg := "/pods/" + p.sid + "/" + p.w1
		checks := e.cpuFiles(cg, shares, quota, period)
		checks[e.memoryLimitFile(cg)] = "134217728"
		for path, want := range checks {
			if got := readTrim(t, path); got != want {
				t.Errorf("%s = %s, want %s", path, got, want)
			}
		}
		// w2 is not affected.
		if got := readTrim(t, e.memoryLimitFile("/pods/"+p.sid+"/"+p.w2)); got == "134217728" {
			t.Error("the update of w1 reached w2")
		}
		// runc refuses swap below the memory limit; nothing changes.
		swap := int64(64 << 20)
		bad := &prot.LCOWContainerConstraints{Linux: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &swap}}}
		err := e.c.Modify(ctx, p.w1, prot.RequestTypeUpdate, prot.ResourceContainerConstraints, bad)
		if err == nil || !strings.Contains(err.Error(), p.w1) {
			t.Fatalf("swap below the limit: %v, want an error naming the container", err)
		}
		if got := readTrim(t, e.memoryLimitFile(cg)); got != "134217728" {
			t.Errorf("memory limit after a refused update = %s", got)
		}
		err = e.podModify(prot.RequestTypeUpdate, prot.ResourceContainerConstraints, upd)
		mustFailWith(t, "constraints on the utility VM", err, prot.HrVmcomputeSystemNotFound, "container id")
		err = e.c.Modify(ctx, newID(t), prot.RequestTypeUpdate, prot.ResourceContainerConstraints, upd)
		if err == nil {
			t.Fatal("constraints on an unknown container succeeded")
		}
	})

	tt("PodCgroupMemoryLimit", func(t *testing.T, e *env) {
		path := e.memoryLimitFile("/pods")
		want := strconv.FormatUint(totalRAM(t)-104857600, 10)
		if got := readTrim(t, path); got != want {
			t.Fatalf("/pods memory limit = %s, want total RAM - 100 MiB = %s", got, want)
		}
		if err := e.podModify(prot.RequestTypeUpdate, prot.ResourcePodCgroupMemoryLimit, nil); err != nil {
			t.Fatalf("PodCgroupMemoryLimit Update: %v", err)
		}
		if got := readTrim(t, path); got != want {
			t.Fatalf("/pods memory limit after Update = %s, want %s", got, want)
		}
		err := e.podModify(prot.RequestTypeAdd, prot.ResourcePodCgroupMemoryLimit, nil)
		mustFailWith(t, "PodCgroupMemoryLimit Add", err, prot.HrFail, "not supported")
	})

	// Teardown as a shim v1 host: workloads first, then the sandbox and
	// its NICs. The pod's network namespace dies with the pause process and
	// takes its veths with it: their peers vanish from the UVM namespace.
	teardownPod(t, e, p)
	deadline := time.Now().Add(20 * time.Second)
	for {
		links := linksIn(t, n.gcsPid)
		var left []string
		for name := range links {
			if strings.HasPrefix(name, testLinkPrefix) {
				left = append(left, name)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("links of the pod survive its teardown: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.podModify(prot.RequestTypeRemove, prot.ResourceNetwork, &prot.LCOWNetworkAdapter{NamespaceID: podNamespace, ID: nic0}); err != nil {
		t.Fatalf("Network Remove after the sandbox is gone: %v", err)
	}
	for _, controller := range []string{"memory", "cpu", "pids"} {
		if _, err := os.Stat(e.cgroupDir(controller, "/pods/"+p.sid)); !os.IsNotExist(err) {
			t.Errorf("pod cgroup %s:/pods/%s survives the pod (%v)", controller, p.sid, err)
		}
	}
}

// startPod creates a sandbox in podNamespace with its pause process, then
// two workloads (sleeping inits, 256 MiB memory limit, a sandbox:// mount)
// joining its namespaces.
func startPod(t *testing.T, e *env) *pod {
	t.Helper()
	p := &pod{sid: newID(t), w1: newID(t), w2: newID(t)}
	e.create(p.sid, e.sandboxSpec(p.sid, strings.ToLower(podNamespace), podHostname))
	p.sandboxPid = e.startInit(p.sid)
	p.hostPid = e.hostPidOf(t, "/pods/"+p.sid+"/"+p.sid)
	limit := int64(256 << 20)
	for i, w := range []string{p.w1, p.w2} {
		s := e.workloadSpec(p.sid, "app"+strconv.Itoa(i+1), p.sandboxPid, "sleep", "1000000")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: "sandbox://shared", Options: []string{"rbind", "rw"}})
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		e.create(w, s)
	}
	p.w1Pid = e.startInit(p.w1)
	p.w2Pid = e.startInit(p.w2)
	return p
}

// teardownPod does what a shim v1 host does when a pod goes away: each
// container is shut down (forced) and waited for; the sandbox's NICs are
// removed (eth0 is left for the caller); then the layers and the state.
func teardownPod(t *testing.T, e *env, p *pod) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	for _, c := range []struct {
		id  string
		pid uint32
	}{{p.w2, p.w2Pid}, {p.w1, p.w1Pid}, {p.sid, p.sandboxPid}} {
		if err := e.c.Shutdown(ctx, c.id, true); err != nil {
			t.Fatalf("shutdown %s: %v", c.id, err)
		}
		e.wait(c.id, c.pid)
		if c.id == p.sid {
			for _, nic := range []string{nic1, nic2} {
				if err := e.podModify(prot.RequestTypeRemove, prot.ResourceNetwork, &prot.LCOWNetworkAdapter{NamespaceID: podNamespace, ID: nic}); err != nil {
					t.Fatalf("Network Remove %s: %v", nic, err)
				}
			}
		}
		if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(c.id)}); err != nil {
			t.Fatalf("CombinedLayers Remove %s: %v", c.id, err)
		}
		if err := e.c.DeleteContainerState(ctx, c.id); err != nil {
			t.Fatalf("DeleteContainerState %s: %v", c.id, err)
		}
	}
}

func podReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func totalRAM(t *testing.T) uint64 {
	t.Helper()
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// TestPodRejections checks the Create requests a guest must refuse with a
// clear error and without leaving anything behind: bad sandbox hostnames,
// a workload with a hostname, a workload of a pod that does not exist, an
// unknown CRI container type. Each refused id can be used again.
func TestPodRejections(t *testing.T) {
	n := newNetEnv(t)
	e := n.env
	n.addNIC(t, nic0, "eth0", 0)
	if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, firstAdapter()); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, hostname string
	}{
		{"Space", "web 0"},
		{"Slash", "web/0"},
		{"NonASCII", "wéb-0"},
		{"Newline", "web-0\n127.0.0.1 evil"},
		{"TooLong", strings.Repeat("a", 256)},
	} {
		t.Run("SandboxHostname"+tc.name, func(t *testing.T) {
			e := e.podForTest(t)
			sid := newID(t)
			err := e.tryCreate(sid, e.sandboxSpec(sid, podNamespace, tc.hostname))
			mustFailWith(t, "sandbox hostname "+tc.name, err, prot.HrFail, "invalid hostname")
			e.assertNoTrace(t, sid, sid)
			// No pod was recorded: a workload of it is refused.
			wid := newID(t)
			err = e.tryCreate(wid, e.workloadSpec(sid, "app", 1, "true"))
			mustFailWith(t, "workload of a refused sandbox", err, prot.HrFail, "does not exist")
			e.assertNoTrace(t, wid, sid)
		})
	}
	// The NIC was not consumed by any refused sandbox.
	if l, ok := linksIn(t, n.gcsPid)["eth0"]; !ok || len(l.inet()) != 0 {
		t.Fatalf("eth0 after refused sandboxes: %v %+v", ok, l)
	}

	t.Run("WorkloadErrors", func(t *testing.T) {
		e := e.podForTest(t)
		sid := newID(t)
		e.create(sid, e.sandboxSpec(sid, podNamespace, podHostname))
		spid := e.startInit(sid)

		wid := newID(t)
		s := e.workloadSpec(sid, "app", spid, "true")
		s.Hostname = "other"
		mustFailWith(t, "workload with a hostname", e.tryCreate(wid, s), prot.HrFail, "hostname must be empty")
		e.assertNoTrace(t, wid, sid)

		s = e.workloadSpec(newID(t), "app", spid, "true")
		mustFailWith(t, "workload of an unknown pod", e.tryCreate(wid, s), prot.HrFail, "does not exist")
		e.assertNoTrace(t, wid, sid)

		s = e.workloadSpec(sid, "app", spid, "true")
		s.Annotations[annContainerType] = "pod"
		mustFailWith(t, "unknown container type", e.tryCreate(wid, s), prot.HrFail, "container-type")
		e.assertNoTrace(t, wid, sid)

		s = e.workloadSpec(sid, "app", spid, "true")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "sandbox://../../escape", Options: []string{"rbind"}})
		mustFailWith(t, "sandbox:// mount escaping", e.tryCreate(wid, s), prot.HrFail, "sandbox://")
		e.assertNoTrace(t, wid, sid)

		// After all that the id works and the workload joins the pod.
		if err := e.tryCreate(wid, e.workloadSpec(sid, "app", spid, "sleep", "100")); err != nil {
			t.Fatalf("create %s after refusals: %v", wid, err)
		}
		// A workload's creation is deferred to its init's start
		// (docs/containers.md, "Deferred create"): its cgroup exists from
		// then on.
		e.startInit(wid)
		if _, err := os.Stat(e.cgroupDir("memory", "/pods/"+sid+"/"+wid)); err != nil {
			t.Fatalf("workload cgroup: %v", err)
		}
		// A second sandbox of the same pod is refused and the first one
		// keeps working.
		dup := e.sandboxSpec(sid, podNamespace, podHostname)
		dup.Root.Path = rootfsOf(sid)
		err := e.c.CreateContainer(ctxT(t, 30*time.Second), sid, hostclient.ContainerSettings(bundleOf(sid), scratchOf(sid), dup))
		mustFailWith(t, "second create of the sandbox", err, prot.HrVmcomputeSystemAlreadyExists, sid)
		if out := e.podMustSh(sid, "hostname"); out != podHostname+"\n" {
			t.Fatalf("sandbox after a refused duplicate: %q", out)
		}
	})
}

// TestPodCgroupFollowsLastMember deletes a sandbox before its workload (a
// shim v2 host may): the pod is closed at once (no one can join it), and
// its cgroup /pods/<sid> goes away with the last workload.
func TestPodCgroupFollowsLastMember(t *testing.T) {
	e := newEnv(t)
	sid, wid := newID(t), newID(t)
	// Pod networking skipped: the namespace record is created empty.
	s := e.sandboxSpec(sid, "0e6b2f4c-1d3a-4b5c-8d7e-9f0a1b2c3d4e", podHostname)
	s.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
	e.create(sid, s)
	spid := e.startInit(sid)
	e.create(wid, e.workloadSpec(sid, "app", spid, "sleep", "1000000"))
	wpid := e.startInit(wid)
	podCg := e.cgroupDir("memory", "/pods/"+sid)

	ctx := ctxT(t, 60*time.Second)
	del := func(id string, pid uint32) {
		t.Helper()
		if err := e.c.Shutdown(ctx, id, true); err != nil {
			t.Fatalf("shutdown %s: %v", id, err)
		}
		e.wait(id, pid)
		if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)}); err != nil {
			t.Fatal(err)
		}
		if err := e.c.DeleteContainerState(ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	del(sid, spid)
	if _, err := os.Stat(podCg); err != nil {
		t.Fatalf("pod cgroup removed while a workload lives in it: %v", err)
	}
	late := newID(t)
	mustFailWith(t, "joining a pod whose sandbox is gone", e.tryCreate(late, e.workloadSpec(sid, "late", spid, "true")), prot.HrFail, "does not exist")
	mustFailWith(t, "re-creating the sandbox of a pod being torn down", e.tryCreate(sid, s), prot.HrFail, "torn down")
	del(wid, wpid)
	if _, err := os.Stat(podCg); !os.IsNotExist(err) {
		t.Fatalf("pod cgroup survives its last member (%v)", err)
	}
	// The id is free again.
	e.create(sid, s)
}
