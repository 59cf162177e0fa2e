package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// CRI annotations a containerd host puts on pod containers.
const (
	annContainerType  = "io.kubernetes.cri.container-type"
	annSandboxID      = "io.kubernetes.cri.sandbox-id"
	annSandboxName    = "io.kubernetes.cri.sandbox-name"
	annSandboxNS      = "io.kubernetes.cri.sandbox-namespace"
	annSandboxUID     = "io.kubernetes.cri.sandbox-uid"
	annContainerName  = "io.kubernetes.cri.container-name"
	annImageName      = "io.kubernetes.cri.image-name"
	sandboxPauseShare = 2 // containerd's default sandbox cpu shares
)

// netEnv is an env whose gcs runs in a network namespace of its own, with a
// fake sysfs tree in which test NICs (veth pairs created inside that
// namespace) are registered under VMBus instance ids.
type netEnv struct {
	*env
	sysfs  string // passed as -sysfs-root
	gcsPid int    // the gcs, as seen from the test
}

// newNetEnv starts a gcs in private mount, pid and network namespaces. The
// network namespace, and every veth created in it, dies with the gcs. The
// cleanup (registered first, so it runs last) checks that no test link
// leaked into the test's own namespace.
func newNetEnv(t *testing.T, extraArgs ...string) *netEnv {
	t.Helper()
	t.Cleanup(func() { checkNoLeakedLinks(t) })
	sysfs := filepath.Join(t.TempDir(), "sys")
	if err := os.MkdirAll(filepath.Join(sysfs, "bus", "vmbus", "devices"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-sysfs-root", sysfs}, extraArgs...)
	g := gcstest.Start(t, gcstest.Options{NetNS: true, Args: args})
	c := connect(t, g)
	pid, err := g.Pid()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if gns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil || gns == self {
		t.Fatalf("the gcs does not have a network namespace of its own (%q, %v)", gns, err)
	}
	layer := filepath.Join(t.TempDir(), "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		t.Fatal(err)
	}
	return &netEnv{env: &env{t: t, g: g, c: c, layer: layer}, sysfs: sysfs, gcsPid: pid}
}

// testLinkPrefix names the peers left in the gcs namespace; none may ever
// appear in the test's own namespace.
const testLinkPrefix = "gcspeer"

func checkNoLeakedLinks(t *testing.T) {
	out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Errorf("ip link show: %v: %s", err, out)
		return
	}
	if strings.Contains(string(out), testLinkPrefix) {
		t.Errorf("a test link leaked into the test's network namespace:\n%s", out)
	}
}

// inGCSNet runs a command in the gcs's network namespace.
func (n *netEnv) inGCSNet(t *testing.T, args ...string) string {
	t.Helper()
	return nsenterNet(t, n.gcsPid, args...)
}

func nsenterNet(t *testing.T, pid int, args ...string) string {
	t.Helper()
	full := append([]string{"-t", strconv.Itoa(pid), "-n", "--"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter -t %d -n %s: %v: %s", pid, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addNIC stands in for HCS hot-adding a synthetic NIC: a veth pair is
// created in the gcs's namespace (name is the guest-side interface, the
// peer stays behind) and registered in the fake sysfs as
// bus/vmbus/devices/<guid>/net/<name>.
func (n *netEnv) addNIC(t *testing.T, guid, name string, peerIndex int) string {
	t.Helper()
	peer := fmt.Sprintf("%s%d", testLinkPrefix, peerIndex)
	n.inGCSNet(t, "ip", "link", "add", name, "type", "veth", "peer", "name", peer)
	dir := filepath.Join(n.sysfs, "bus", "vmbus", "devices", strings.ToLower(guid), "net", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return peer
}

// ipLink is the part of `ip -j link/addr` output the tests read.
type ipLink struct {
	IfName   string   `json:"ifname"`
	MTU      int      `json:"mtu"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func (l ipLink) up() bool {
	for _, f := range l.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

func (l ipLink) inet() []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == "inet" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		}
	}
	return out
}

// linksIn lists the links of the network namespace of pid, by name.
func linksIn(t *testing.T, pid int) map[string]ipLink {
	t.Helper()
	var links []ipLink
	if err := json.Unmarshal([]byte(nsenterNet(t, pid, "ip", "-j", "addr", "show")), &links); err != nil {
		t.Fatalf("decode ip -j addr: %v", err)
	}
	m := map[string]ipLink{}
	for _, l := range links {
		m[l.IfName] = l
	}
	return m
}

type ipRoute struct {
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Metric  int    `json:"metric"`
}

func routesIn(t *testing.T, pid int) []ipRoute {
	t.Helper()
	var routes []ipRoute
	if err := json.Unmarshal([]byte(nsenterNet(t, pid, "ip", "-j", "route", "show")), &routes); err != nil {
		t.Fatalf("decode ip -j route: %v", err)
	}
	return routes
}

func hasRoute(routes []ipRoute, want ipRoute) bool {
	for _, r := range routes {
		if r == want {
			return true
		}
	}
	return false
}

// sandboxSpec is the spec a shim v1 host sends for a pod's sandbox: the
// pause process, the pod hostname, new namespaces, containerd's sandbox
// cpu shares, the CRI annotations and the HNS namespace of the pod.
func (e *env) sandboxSpec(id, nsID, hostname string) *specs.Spec {
	s := e.spec("sleep", "1000000")
	s.Hostname = hostname
	s.Annotations = map[string]string{
		annContainerType: "sandbox",
		annSandboxID:     id,
		annSandboxName:   "web-0",
		annSandboxNS:     "default",
		annSandboxUID:    "5b1e3f7a-0c44-4d7e-9a61-2f0f8c6d1a10",
	}
	shares := uint64(sandboxPauseShare)
	s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}
	if nsID != "" {
		s.Windows = &specs.Windows{Network: &specs.WindowsNetwork{NetworkNamespace: nsID}}
	}
	return s
}

// workloadSpec is the spec a host sends for a workload of pod sid whose
// pause process has pid sandboxPid (in the guest): containerd's
// WithPodNamespaces points the network, IPC and UTS namespaces at the
// sandbox's, the pid namespace stays private; the hostname is empty (the
// pod's is in HOSTNAME); the CRI annotations name the pod.
func (e *env) workloadSpec(sid, name string, sandboxPid uint32, args ...string) *specs.Spec {
	s := e.spec(args...)
	s.Hostname = ""
	s.Process.Env = append(s.Process.Env, "HOSTNAME=web-0")
	ns := func(kind string) string { return fmt.Sprintf("/proc/%d/ns/%s", sandboxPid, kind) }
	s.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace, Path: ns("ipc")},
		{Type: specs.UTSNamespace, Path: ns("uts")},
		{Type: specs.MountNamespace},
		{Type: specs.NetworkNamespace, Path: ns("net")},
	}
	s.Annotations = map[string]string{
		annContainerType: "container",
		annSandboxID:     sid,
		annSandboxName:   "web-0",
		annSandboxNS:     "default",
		annSandboxUID:    "5b1e3f7a-0c44-4d7e-9a61-2f0f8c6d1a10",
		annContainerName: name,
		annImageName:     "docker.io/library/busybox:latest",
	}
	return s
}

// startInit starts a container's init process without stdio, as a host
// does for a pause process, and returns its pid in the guest.
func (e *env) startInit(id string) uint32 {
	e.t.Helper()
	return e.exec(id, nil, false, false, false).pid
}

// podSh runs args in container id and returns stdout+stderr (merged by the
// shell) and the exit code.
func (e *env) podSh(id string, script string) (string, uint32) {
	e.t.Helper()
	p := e.exec(id, procArgs("sh", "-c", "exec 2>&1; "+script), false, true, false)
	out := readAll(e.t, p.stdio, hostclient.StdOut)
	return out, e.wait(id, p.pid)
}

// podMustSh is podSh that fails the test on a non-zero exit.
func (e *env) podMustSh(id, script string) string {
	e.t.Helper()
	out, code := e.podSh(id, script)
	if code != 0 {
		e.t.Fatalf("%s in %s: exit %d: %s", script, id, code, out)
	}
	return out
}

// podForTest returns a copy of e whose helpers report to t (a subtest).
func (e *env) podForTest(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// hostPidOf returns the pid, as seen from the test, of the only process in
// cgroup path (a pause process).
func (e *env) hostPidOf(t *testing.T, path string) int {
	t.Helper()
	f := strings.Fields(readTrim(t, filepath.Join(e.cgroupDir("memory", path), "cgroup.procs")))
	if len(f) != 1 {
		t.Fatalf("cgroup %s holds %v, want one process", path, f)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// podModify sends a ModifySettings on the utility VM.
func (e *env) podModify(requestType, resourceType string, settings any) error {
	return e.c.Modify(ctxT(e.t, 30*time.Second), prot.NullContainerID, requestType, resourceType, settings)
}

func mustFailWith(t *testing.T, what string, err error, hr prot.HResult, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want an error", what)
	}
	if got := hostclient.ResultOf(err); got != hr {
		t.Fatalf("%s: HRESULT %s (%v), want %s", what, got, err, hr)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("%s: error %q does not say %q", what, err, text)
	}
}

// tryCreate is create for requests expected to fail: CombinedLayers Add,
// then Create; the layers are removed again and the Create error returned.
// On success the container is registered for teardown like create does.
func (e *env) tryCreate(id string, s *specs.Spec) error {
	e.t.Helper()
	ctx := ctxT(e.t, 60*time.Second)
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: scratchOf(id)}
	if err := e.c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		e.t.Fatalf("combined layers for %s: %v", id, err)
	}
	removeLayers := func() error {
		return e.c.Modify(context.Background(), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
	}
	s.Root.Path = rootfsOf(id)
	err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), s))
	if err != nil {
		if rerr := removeLayers(); rerr != nil {
			e.t.Fatalf("CombinedLayers Remove after a failed create of %s: %v", id, rerr)
		}
		return err
	}
	e.t.Cleanup(func() {
		_ = removeLayers()
		_ = e.c.DeleteContainerState(context.Background(), id)
	})
	return nil
}

// assertNoTrace checks that a refused Create of id left nothing of its
// own behind: no config.json, pod files or runc log in the bundle (the
// bundle directory itself holds the host's scratch), no runc state, no
// cgroup.
func (e *env) assertNoTrace(t *testing.T, id, sid string) {
	t.Helper()
	paths := []string{"/run/runc/" + id}
	for _, f := range []string{"config.json", "hostname", "hosts", "resolv.conf", "runc.log", "sandboxMounts"} {
		paths = append(paths, filepath.Join(bundleOf(id), f))
	}
	for _, p := range paths {
		gp, err := e.g.Root(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(gp); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused create (%v)", p, err)
		}
	}
	for _, cg := range []string{"/pods/" + sid + "/" + id, "/pods/" + id} {
		if _, err := os.Stat(e.cgroupDir("memory", cg)); !os.IsNotExist(err) {
			t.Errorf("cgroup %s exists after a refused create (%v)", cg, err)
		}
	}
}
