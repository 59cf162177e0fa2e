package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestNetworkAdapterRejected sends Network Add requests a guest must refuse
// and checks that none of them recorded anything or touched the NIC: a
// sandbox of the namespace is then refused for lack of a namespace, and
// after one good Add its resolv.conf only holds the good adapter's DNS.
func TestNetworkAdapterRejected(t *testing.T) {
	n := newNetEnv(t)
	e := n.env
	n.addNIC(t, nic0, "eth0", 0)
	good := func() *prot.LCOWNetworkAdapter {
		return &prot.LCOWNetworkAdapter{
			NamespaceID: podNamespace, ID: nic0, DNSSuffix: "bad.test", DNSServerList: "192.0.2.53",
			IPConfigs: []prot.IPConfig{{IPAddress: "10.88.0.7", PrefixLength: 24}},
			Routes:    []prot.Route{{NextHop: "10.88.0.1", DestinationPrefix: "0.0.0.0/0"}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(a *prot.LCOWNetworkAdapter)
		text   string
	}{
		{"NoNamespace", func(a *prot.LCOWNetworkAdapter) { a.NamespaceID = "" }, "NamespaceID"},
		{"IDNotGUID", func(a *prot.LCOWNetworkAdapter) { a.ID = "eth0" }, "not a GUID"},
		{"IDPathTraversal", func(a *prot.LCOWNetworkAdapter) { a.ID = "../../../../../etc/passwd" }, "not a GUID"},
		{"BadAddress", func(a *prot.LCOWNetworkAdapter) { a.IPConfigs[0].IPAddress = "10.88.0.300" }, "bad IP address"},
		{"PrefixTooLong", func(a *prot.LCOWNetworkAdapter) { a.IPConfigs[0].PrefixLength = 33 }, "prefix length 33"},
		{"MulticastAddress", func(a *prot.LCOWNetworkAdapter) { a.IPConfigs[0].IPAddress = "224.0.0.1" }, "cannot be assigned"},
		{"RouteWithoutDestinationOrGateway", func(a *prot.LCOWNetworkAdapter) { a.Routes = []prot.Route{{}} }, "neither a destination nor a gateway"},
		{"BadNextHop", func(a *prot.LCOWNetworkAdapter) { a.Routes[0].NextHop = "gateway" }, "bad next hop"},
		{"BadDestination", func(a *prot.LCOWNetworkAdapter) { a.Routes[0].DestinationPrefix = "10.0.0.0/40" }, "bad destination prefix"},
		{"MixedFamilies", func(a *prot.LCOWNetworkAdapter) {
			a.Routes = []prot.Route{{NextHop: "fe80::1", DestinationPrefix: "10.0.0.0/8"}}
		}, "different address families"},
		{"UnknownNIC", func(a *prot.LCOWNetworkAdapter) { a.ID = nic2 }, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.podForTest(t)
			a := good()
			tc.change(a)
			err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, a)
			mustFailWith(t, tc.name, err, prot.HrFail, tc.text)
		})
	}
	t.Run("MissingSettings", func(t *testing.T) {
		e := e.podForTest(t)
		err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, nil)
		mustFailWith(t, "Network Add without settings", err, prot.HrVmcomputeInvalidJSON, "Settings")
	})
	t.Run("UpdateNotSupported", func(t *testing.T) {
		e := e.podForTest(t)
		err := e.podModify(prot.RequestTypeUpdate, prot.ResourceNetwork, good())
		mustFailWith(t, "Network Update", err, prot.HrFail, "not supported")
	})

	// Nothing was recorded and eth0 is untouched.
	if l, ok := linksIn(t, n.gcsPid)["eth0"]; !ok || l.up() || len(l.inet()) != 0 || l.MTU != 1500 {
		t.Fatalf("eth0 after refused adds: %v %+v", ok, l)
	}
	sid := newID(t)
	err := e.tryCreate(sid, e.sandboxSpec(sid, podNamespace, podHostname))
	mustFailWith(t, "sandbox without a namespace record", err, prot.HrFail, "network namespace")
	e.assertNoTrace(t, sid, sid)

	a := good()
	a.DNSSuffix, a.DNSServerList = "svc.cluster.local", "10.0.0.10"
	if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, a); err != nil {
		t.Fatalf("good Network Add: %v", err)
	}
	e.create(sid, e.sandboxSpec(sid, podNamespace, podHostname))
	path, _ := e.g.Root(filepath.Join(bundleOf(sid), "resolv.conf"))
	if got := podReadFile(t, path); got != "search svc.cluster.local\nnameserver 10.0.0.10\n" {
		t.Fatalf("resolv.conf = %q", got)
	}
}

// TestSandboxNetworkNamespace covers how a sandbox finds its network: the
// namespace must exist unless pod networking is skipped; a search list
// longer than resolv.conf allows is refused without leaving pod files.
func TestSandboxNetworkNamespace(t *testing.T) {
	n := newNetEnv(t)
	e := n.env

	t.Run("NoNamespaceInSpec", func(t *testing.T) {
		e := e.podForTest(t)
		sid := newID(t)
		err := e.tryCreate(sid, e.sandboxSpec(sid, "", podHostname))
		mustFailWith(t, "sandbox without windows.network", err, prot.HrFail, "network namespace")
		e.assertNoTrace(t, sid, sid)
	})

	t.Run("SkipPodNetworking", func(t *testing.T) {
		e := e.podForTest(t)
		sid := newID(t)
		s := e.sandboxSpec(sid, "", podHostname)
		s.Annotations["io.microsoft.cri.skip-pod-networking"] = "True"
		e.create(sid, s)
		e.startInit(sid)
		root, _ := e.g.Root(bundleOf(sid))
		if got := podReadFile(t, filepath.Join(root, "hostname")); got != podHostname+"\n" {
			t.Fatalf("hostname = %q", got)
		}
		if _, err := os.Stat(filepath.Join(root, "resolv.conf")); !os.IsNotExist(err) {
			t.Fatalf("resolv.conf written although pod networking is skipped (%v)", err)
		}
		// The sandbox has a network namespace of its own with only a
		// loopback.
		out := e.podMustSh(sid, "/bin/busybox ip -o link")
		if strings.Count(out, "\n") != 1 || !strings.Contains(out, "lo:") {
			t.Fatalf("links of a sandbox without pod networking: %q", out)
		}
	})

	t.Run("TooManySearchDomains", func(t *testing.T) {
		e := e.podForTest(t)
		ns := "7a3f1c2e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
		n.addNIC(t, nic1, "eth1", 1)
		a := &prot.LCOWNetworkAdapter{
			NamespaceID: ns, ID: nic1, DNSSuffix: "a.test,b.test,c.test,d.test,e.test,f.test,g.test",
			IPConfigs: []prot.IPConfig{{IPAddress: "10.66.0.2", PrefixLength: 24}},
		}
		if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, a); err != nil {
			t.Fatal(err)
		}
		sid := newID(t)
		err := e.tryCreate(sid, e.sandboxSpec(sid, ns, podHostname))
		mustFailWith(t, "seven search domains", err, prot.HrFail, "search domains")
		e.assertNoTrace(t, sid, sid)
		if l, ok := linksIn(t, n.gcsPid)["eth1"]; !ok || len(l.inet()) != 0 {
			t.Fatalf("eth1 after the refused sandbox: %v %+v", ok, l)
		}
	})
}

// TestStandaloneContainerNetworking: a container without CRI annotations is
// its own pod (docs/lifecycle.md, "Standalone containers"): the NIC announced
// for its namespace lands in its network namespace, and it gets the pod files
// bind-mounted from its bundle.
func TestStandaloneContainerNetworking(t *testing.T) {
	n := newNetEnv(t)
	e := n.env
	n.addNIC(t, nic0, "eth0", 0)
	if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, firstAdapter()); err != nil {
		t.Fatal(err)
	}
	id := newID(t)
	s := e.sandboxSpec(id, podNamespace, podHostname)
	s.Annotations = nil
	e.create(id, s)
	e.startInit(id)
	if got := e.podMustSh(id, "cat /etc/resolv.conf /etc/hostname"); got != podResolvConf+podHostname+"\n" {
		t.Fatalf("standalone pod files: %q", got)
	}
	mustContain(t, e.podMustSh(id, "/bin/busybox ip -o -4 addr show dev eth0"), "inet 10.88.0.7/24")
	if _, ok := linksIn(t, n.gcsPid)["eth0"]; ok {
		t.Fatal("eth0 stayed in the UVM namespace")
	}
	if _, err := os.Stat(e.cgroupDir("memory", "/pods/"+id)); err != nil {
		t.Fatalf("standalone cgroup /pods/<id>: %v", err)
	}
}
