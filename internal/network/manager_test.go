package network_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/network"
	"github.com/opengcs/opengcs/internal/network/ifname"
	"github.com/opengcs/opengcs/internal/network/netconf"
	"github.com/opengcs/opengcs/internal/network/nettest"
	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

const (
	nsID  = "3F1D3C3E-9A4B-4C8E-8F59-1B2F5A7E9D10"
	nicID = "A1B2C3D4-0000-4000-8000-00155D0A0B0C"
	nic2  = "b2c3d4e5-0000-4000-8000-00155d0a0b0d"
	nic3  = "c3d4e5f6-0000-4000-8000-00155d0a0b0e"
)

// fixture is a fake utility VM: a root namespace holding veth "NICs", a
// sysfs tree naming them, and a sandbox process with its own namespace.
type fixture struct {
	uvm, pod *nettest.NetNS
	sysfs    *nettest.Sysfs
	mgr      *network.Manager
}

func newFixture(t *testing.T, dhcp netconf.DHCPClient) *fixture {
	t.Helper()
	f := &fixture{uvm: nettest.NewNetNS(t), pod: nettest.NewNetNS(t), sysfs: nettest.NewSysfs(t)}
	var err error
	f.mgr, err = network.New(network.Options{
		Resolver:       ifname.New(f.sysfs.Root),
		RootNetNSPath:  f.uvm.Path,
		ResolveTimeout: time.Second,
		DHCP:           dhcp,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.mgr.Close() })
	return f
}

// nic creates a veth in the UVM namespace, publishes it in sysfs under id
// and returns its name.
func (f *fixture) nic(t *testing.T, id, peerAddr string) string {
	t.Helper()
	name, _ := nettest.Veth(t, f.uvm, peerAddr)
	f.sysfs.AddNetvsc(t, id, name)
	return name
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantRoutes(t *testing.T, what string, got []nettest.RouteInfo, want ...nettest.RouteInfo) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: missing route %v; have %v", what, w, got)
		}
	}
}

func wantHResult(t *testing.T, err error, hr prot.HResult) {
	t.Helper()
	var pe *prot.Error
	if !errors.As(err, &pe) || pe.Result != hr {
		t.Errorf("error %v does not carry %v", err, hr)
	}
}

func TestBindMovesAdaptersAndHotAdd(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	eth0 := f.nic(t, nicID, "10.244.1.1/24")
	eth1 := f.nic(t, nic2, "10.245.0.1/16")

	first := &prot.LCOWNetworkAdapter{
		NamespaceID:        nsID,
		ID:                 nicID,
		DNSSuffix:          "svc.cluster.local,Cluster.Local",
		DNSServerList:      "10.0.0.10",
		EncapOverhead:      50,
		PolicyBasedRouting: true,
		IPConfigs:          []prot.IPConfig{{IPAddress: "10.244.1.7", PrefixLength: 24}},
		Routes:             []prot.Route{{NextHop: "10.244.1.1", DestinationPrefix: "0.0.0.0/0"}},
	}
	if err := f.mgr.AddAdapter(ctx(t), first); err != nil {
		t.Fatalf("AddAdapter: %v", err)
	}
	// Not bound yet: the NIC stays where it is.
	if f.uvm.Link(t, eth0) == nil || f.pod.Link(t, eth0) != nil {
		t.Fatal("adapter moved before the namespace was bound")
	}
	if got, _ := f.mgr.Adapters(strings.ToLower(nsID)); len(got) != 1 || got[0].Configured || got[0].IfName != eth0 {
		t.Fatalf("Adapters = %+v", got)
	}

	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if f.uvm.Link(t, eth0) != nil {
		t.Error("adapter still in the UVM namespace after Bind")
	}
	link := f.pod.Link(t, eth0)
	if link == nil {
		t.Fatal("adapter not in the pod namespace after Bind")
	}
	if link.Attrs().MTU != 1450 {
		t.Errorf("MTU = %d, want 1500-50", link.Attrs().MTU)
	}
	if !nettest.IsUp(link) {
		t.Error("adapter is down")
	}
	if !nettest.IsUp(f.pod.Link(t, "lo")) {
		t.Error("loopback of the pod namespace is down")
	}
	if got := f.pod.Addrs(t, eth0); !reflect.DeepEqual(got, []string{"10.244.1.7/24"}) {
		t.Errorf("addresses = %q", got)
	}
	wantRoutes(t, "pod main table", f.pod.Routes(t, unix.AF_INET, unix.RT_TABLE_MAIN),
		nettest.RouteInfo{Dst: "default", Gw: "10.244.1.1", Dev: eth0, Table: unix.RT_TABLE_MAIN},
		nettest.RouteInfo{Dst: "10.244.1.0/24", Dev: eth0, Table: unix.RT_TABLE_MAIN})
	if rules := f.pod.Rules(t, unix.AF_INET, netconf.PolicyTable); len(rules) != 0 {
		t.Errorf("first adapter made policy rules %q", rules)
	}

	// Hot add after Bind: the second adapter (policy-based routing, so low
	// metric) lands at once, with IPv6, a skipped gateway-less default
	// route and routes in the policy table.
	second := &prot.LCOWNetworkAdapter{
		NamespaceID:        strings.ToLower(nsID),
		ID:                 nic2,
		DNSSuffix:          "cluster.local, example.com",
		DNSServerList:      "10.0.0.11,10.0.0.10",
		PolicyBasedRouting: true,
		IPConfigs: []prot.IPConfig{
			{IPAddress: "10.245.0.5", PrefixLength: 16},
			{IPAddress: "fd00:1::5", PrefixLength: 64},
		},
		Routes: []prot.Route{
			{NextHop: "0.0.0.0", DestinationPrefix: "0.0.0.0/0"},
			{NextHop: "10.245.0.1", DestinationPrefix: "192.168.50.0/24"},
			{NextHop: "fd00:1::1", DestinationPrefix: "::/0", Metric: 7},
		},
	}
	if err := f.mgr.AddAdapter(ctx(t), second); err != nil {
		t.Fatalf("AddAdapter after Bind: %v", err)
	}
	if f.pod.Link(t, eth1) == nil || f.uvm.Link(t, eth1) != nil {
		t.Fatal("hot-added adapter not moved into the pod namespace")
	}
	if got := f.pod.Addrs(t, eth1); !reflect.DeepEqual(got, []string{"10.245.0.5/16", "fd00:1::5/64"}) {
		t.Errorf("second adapter addresses = %q", got)
	}
	if got := f.pod.Rules(t, unix.AF_INET, netconf.PolicyTable); !reflect.DeepEqual(got, []string{"from 10.245.0.5/32 lookup 101 pref 5"}) {
		t.Errorf("IPv4 policy rules = %q", got)
	}
	if got := f.pod.Rules(t, unix.AF_INET6, netconf.PolicyTable); !reflect.DeepEqual(got, []string{"from fd00:1::5/128 lookup 101 pref 5"}) {
		t.Errorf("IPv6 policy rules = %q", got)
	}
	wantRoutes(t, "pod table 101", f.pod.Routes(t, unix.AF_INET, netconf.PolicyTable),
		nettest.RouteInfo{Dst: "192.168.50.0/24", Gw: "10.245.0.1", Dev: eth1, Metric: netconf.LowMetric, Table: netconf.PolicyTable})
	wantRoutes(t, "pod table 101 (IPv6)", f.pod.Routes(t, unix.AF_INET6, netconf.PolicyTable),
		nettest.RouteInfo{Dst: "default", Gw: "fd00:1::1", Dev: eth1, Metric: 7, Table: netconf.PolicyTable})
	for _, r := range f.pod.Routes(t, unix.AF_INET, 0) {
		if r.Dst == "default" && r.Dev == eth1 {
			t.Errorf("gateway-less default route was added: %v", r)
		}
	}

	// The DNS settings of both adapters, merged.
	got := resolvConf(t, f.mgr, nsID)
	want := "search svc.cluster.local cluster.local example.com\nnameserver 10.0.0.10\nnameserver 10.0.0.11\n"
	if string(got) != want {
		t.Errorf("resolv.conf = %q, want %q", got, want)
	}

	// Duplicate ids are rejected whatever their case; nothing changes.
	dup := *first
	dup.ID = strings.ToLower(nicID)
	err := f.mgr.AddAdapter(ctx(t), &dup)
	if !errors.Is(err, network.ErrDuplicateAdapter) {
		t.Errorf("duplicate AddAdapter = %v, want ErrDuplicateAdapter", err)
	}
	wantHResult(t, err, prot.HrFail)

	// Removal forgets the adapter; unknown ids and namespaces are fine.
	if err := f.mgr.RemoveAdapter(ctx(t), nsID, strings.ToLower(nicID)); err != nil {
		t.Errorf("RemoveAdapter: %v", err)
	}
	if err := f.mgr.RemoveAdapter(ctx(t), nsID, nic3); err != nil {
		t.Errorf("RemoveAdapter(unknown adapter): %v", err)
	}
	if err := f.mgr.RemoveAdapter(ctx(t), "no-such-namespace", nicID); err != nil {
		t.Errorf("RemoveAdapter(unknown namespace): %v", err)
	}
	ads, ok := f.mgr.Adapters(nsID)
	if !ok || len(ads) != 1 || ads[0].ID != nic2 || !ads[0].Configured {
		t.Errorf("Adapters after remove = %+v, %v", ads, ok)
	}
	if got := resolvConf(t, f.mgr, nsID); got != "search cluster.local example.com\nnameserver 10.0.0.11\nnameserver 10.0.0.10\n" {
		t.Errorf("resolv.conf after remove = %q", got)
	}
}

// TestGatewayOutsidePrefix covers the on-link gateway retry: the route's
// gateway is not inside any prefix of the link.
func TestGatewayOutsidePrefix(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	eth := f.nic(t, nicID, "")
	a := &prot.LCOWNetworkAdapter{
		NamespaceID: nsID,
		ID:          nicID,
		IPConfigs:   []prot.IPConfig{{IPAddress: "10.1.0.5", PrefixLength: 32}},
		Routes:      []prot.Route{{NextHop: "10.9.9.1", DestinationPrefix: "0.0.0.0/0", Metric: 3}},
	}
	if err := f.mgr.AddAdapter(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if got := f.pod.Addrs(t, eth); !reflect.DeepEqual(got, []string{"10.1.0.5/32", "10.9.9.1/32"}) {
		t.Errorf("addresses = %q, want the gateway added as a host address", got)
	}
	wantRoutes(t, "main table", f.pod.Routes(t, unix.AF_INET, unix.RT_TABLE_MAIN),
		nettest.RouteInfo{Dst: "default", Gw: "10.9.9.1", Dev: eth, Metric: 3, Table: unix.RT_TABLE_MAIN})
}

func TestBindHost(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	eth := f.nic(t, nicID, "10.30.0.1/24")
	a := &prot.LCOWNetworkAdapter{
		NamespaceID: nsID,
		ID:          nicID,
		IPConfigs:   []prot.IPConfig{{IPAddress: "10.30.0.9", PrefixLength: 24}},
		Routes:      []prot.Route{{NextHop: "10.30.0.1", DestinationPrefix: "0.0.0.0/0"}},
	}
	if err := f.mgr.AddAdapter(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.BindHost(ctx(t), nsID); err != nil {
		t.Fatalf("BindHost: %v", err)
	}
	if f.uvm.Link(t, eth) == nil {
		t.Fatal("host-network adapter left the root namespace")
	}
	if got := f.uvm.Addrs(t, eth); !reflect.DeepEqual(got, []string{"10.30.0.9/24"}) {
		t.Errorf("addresses = %q", got)
	}
	wantRoutes(t, "root main table", f.uvm.Routes(t, unix.AF_INET, unix.RT_TABLE_MAIN),
		nettest.RouteInfo{Dst: "default", Gw: "10.30.0.1", Dev: eth, Table: unix.RT_TABLE_MAIN})
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); !errors.Is(err, network.ErrAlreadyBound) {
		t.Errorf("Bind after BindHost = %v, want ErrAlreadyBound", err)
	}
}

// snapshot is what a failed request must leave unchanged.
type snapshot struct {
	uvmLinks, podLinks []string
	nicAddrs           []string
	podRoutes          []nettest.RouteInfo
	podRules           []string
	adapters           []network.AdapterInfo
	mtu                int
	up                 bool
}

func (f *fixture) snapshot(t *testing.T, nic string) snapshot {
	t.Helper()
	s := snapshot{}
	for _, ns := range []*nettest.NetNS{f.uvm, f.pod} {
		links, err := ns.NL.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		slices.Sort(names)
		if ns == f.uvm {
			s.uvmLinks = names
		} else {
			s.podLinks = names
		}
	}
	if l := f.uvm.Link(t, nic); l != nil {
		s.nicAddrs = f.uvm.Addrs(t, nic)
		s.mtu = l.Attrs().MTU
		s.up = nettest.IsUp(l)
	}
	s.podRoutes = append(f.pod.Routes(t, unix.AF_INET, 0), f.pod.Routes(t, unix.AF_INET6, 0)...)
	s.podRules = append(f.pod.Rules(t, unix.AF_INET, netconf.PolicyTable), f.pod.Rules(t, unix.AF_INET6, netconf.PolicyTable)...)
	s.adapters, _ = f.mgr.Adapters(nsID)
	return s
}

func TestAddAdapterRejects(t *testing.T) {
	good := func() *prot.LCOWNetworkAdapter {
		return &prot.LCOWNetworkAdapter{
			NamespaceID: nsID,
			ID:          nic3,
			IPConfigs:   []prot.IPConfig{{IPAddress: "10.60.0.5", PrefixLength: 24}},
			Routes:      []prot.Route{{NextHop: "10.60.0.1", DestinationPrefix: "0.0.0.0/0"}},
		}
	}
	tests := []struct {
		name   string
		mutate func(*prot.LCOWNetworkAdapter)
		err    error
		msg    string
	}{
		{"bad IP", func(a *prot.LCOWNetworkAdapter) { a.IPConfigs[0].IPAddress = "10.60.0.300" }, netconf.ErrInvalidConfig, "bad IP address"},
		{"bad prefix", func(a *prot.LCOWNetworkAdapter) { a.IPConfigs[0].PrefixLength = 33 }, netconf.ErrInvalidConfig, "prefix length 33"},
		{"route without destination or gateway", func(a *prot.LCOWNetworkAdapter) { a.Routes = []prot.Route{{Metric: 5}} }, netconf.ErrInvalidConfig, "neither a destination nor a gateway"},
		{"default route without next hop", func(a *prot.LCOWNetworkAdapter) { a.Routes[0].NextHop = "" }, netconf.ErrInvalidConfig, "neither a destination nor a gateway"},
		{"bad destination", func(a *prot.LCOWNetworkAdapter) { a.Routes[0].DestinationPrefix = "10.0.0.0/40" }, netconf.ErrInvalidConfig, "bad destination prefix"},
		{"bad next hop", func(a *prot.LCOWNetworkAdapter) { a.Routes[0].NextHop = "gateway" }, netconf.ErrInvalidConfig, "bad next hop"},
		{"mixed families", func(a *prot.LCOWNetworkAdapter) { a.Routes[0].NextHop = "fd00::1" }, netconf.ErrInvalidConfig, "different address families"},
		{"bad GUID", func(a *prot.LCOWNetworkAdapter) { a.ID = "not-a-guid" }, ifname.ErrInvalidID, "not a GUID"},
		{"id escaping sysfs", func(a *prot.LCOWNetworkAdapter) { a.ID = "../../../../../../../../../proc/self" }, ifname.ErrInvalidID, "not a GUID"},
		{"empty namespace", func(a *prot.LCOWNetworkAdapter) { a.NamespaceID = " " }, network.ErrInvalidRequest, "empty NamespaceID"},
		{"unknown adapter", func(a *prot.LCOWNetworkAdapter) { a.ID = "d4e5f6a7-0000-4000-8000-00155d0a0b0f" }, ifname.ErrNotFound, "network device not found"},
		{"duplicate adapter", func(a *prot.LCOWNetworkAdapter) { a.ID = strings.ToUpper(nicID) }, network.ErrDuplicateAdapter, "already added"},
		// The next two fail in the kernel, after the link was moved into the
		// pod namespace: everything must be rolled back.
		{"MTU overhead too large", func(a *prot.LCOWNetworkAdapter) { a.EncapOverhead = 1450 }, netconf.ErrInvalidConfig, "below 68"},
		{"route the kernel refuses", func(a *prot.LCOWNetworkAdapter) {
			a.IPConfigs = append(a.IPConfigs, prot.IPConfig{IPAddress: "fd00:60::5", PrefixLength: 64})
			a.PolicyBasedRouting, a.EnableLowMetric = true, true
			a.Routes = append(a.Routes, a.Routes[0]) // the same route twice: EEXIST
		}, unix.EEXIST, "add route default via 10.60.0.1"},
	}

	f := newFixture(t, netconf.DHCPClient{})
	// A namespace already bound with one adapter, so that a bad add that
	// passes validation goes as far as moving its link.
	f.nic(t, nicID, "10.50.0.1/24")
	if err := f.mgr.AddAdapter(ctx(t), &prot.LCOWNetworkAdapter{
		NamespaceID: nsID, ID: nicID,
		IPConfigs: []prot.IPConfig{{IPAddress: "10.50.0.5", PrefixLength: 24}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); err != nil {
		t.Fatal(err)
	}
	candidate := f.nic(t, nic3, "10.60.0.1/24")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot(t, candidate)
			a := good()
			tt.mutate(a)
			err := f.mgr.AddAdapter(ctx(t), a)
			if !errors.Is(err, tt.err) {
				t.Fatalf("AddAdapter = %v, want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			wantHResult(t, err, prot.HrFail)
			if after := f.snapshot(t, candidate); !reflect.DeepEqual(before, after) {
				t.Errorf("state changed by a failed AddAdapter:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}

	// The good settings still work afterwards.
	if err := f.mgr.AddAdapter(ctx(t), good()); err != nil {
		t.Fatalf("AddAdapter(good) after the failures: %v", err)
	}
	if f.pod.Link(t, candidate) == nil {
		t.Fatal("good adapter not moved")
	}
}

// TestBindRollback: when one adapter of a Bind fails, the adapters moved
// before it go back too and the namespace stays unbound.
func TestBindRollback(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	eth0 := f.nic(t, nicID, "10.70.0.1/24")
	eth1 := f.nic(t, nic2, "10.71.0.1/24")
	if err := f.mgr.AddAdapter(ctx(t), &prot.LCOWNetworkAdapter{
		NamespaceID: nsID, ID: nicID, EncapOverhead: 100, PolicyBasedRouting: true,
		IPConfigs: []prot.IPConfig{{IPAddress: "10.70.0.5", PrefixLength: 24}},
		Routes:    []prot.Route{{NextHop: "10.70.0.1", DestinationPrefix: "0.0.0.0/0"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.AddAdapter(ctx(t), &prot.LCOWNetworkAdapter{
		NamespaceID: nsID, ID: nic2, EncapOverhead: 1490, PolicyBasedRouting: true,
		IPConfigs: []prot.IPConfig{{IPAddress: "10.71.0.5", PrefixLength: 24}},
	}); err != nil {
		t.Fatal(err)
	}
	before0, before1 := f.snapshot(t, eth0), f.snapshot(t, eth1)

	err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid)
	if !errors.Is(err, netconf.ErrInvalidConfig) {
		t.Fatalf("Bind = %v, want ErrInvalidConfig", err)
	}
	if after := f.snapshot(t, eth0); !reflect.DeepEqual(before0, after) {
		t.Errorf("first adapter not rolled back:\nbefore %+v\nafter  %+v", before0, after)
	}
	if after := f.snapshot(t, eth1); !reflect.DeepEqual(before1, after) {
		t.Errorf("second adapter not rolled back:\nbefore %+v\nafter  %+v", before1, after)
	}

	// Without the bad adapter the same Bind succeeds.
	if err := f.mgr.RemoveAdapter(ctx(t), nsID, nic2); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); err != nil {
		t.Fatalf("Bind after removing the bad adapter: %v", err)
	}
	if l := f.pod.Link(t, eth0); l == nil || l.Attrs().MTU != 1400 {
		t.Fatalf("adapter not configured after the retried Bind: %v", l)
	}
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid+100000); !errors.Is(err, network.ErrAlreadyBound) {
		t.Errorf("Bind to another pid = %v, want ErrAlreadyBound", err)
	}
}

func TestNamespaceRecords(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); !errors.Is(err, network.ErrNamespaceNotFound) {
		t.Errorf("Bind(unknown) = %v, want ErrNamespaceNotFound", err)
	}
	if _, err := f.mgr.AdapterSettings(nsID); !errors.Is(err, network.ErrNamespaceNotFound) {
		t.Errorf("AdapterSettings(unknown) = %v, want ErrNamespaceNotFound", err)
	}
	if err := f.mgr.Bind(ctx(t), nsID, 0); !errors.Is(err, network.ErrInvalidRequest) {
		t.Errorf("Bind(pid 0) = %v, want ErrInvalidRequest", err)
	}
	f.mgr.EnsureNamespace(nsID)
	if a, err := f.mgr.AdapterSettings(strings.ToLower(nsID)); err != nil || len(a) != 0 {
		t.Errorf("AdapterSettings(empty record) = %v, %v", a, err)
	}
	// Binding an empty namespace records the pid; a later add is moved.
	if err := f.mgr.Bind(ctx(t), nsID, f.pod.Pid); err != nil {
		t.Fatalf("Bind(empty): %v", err)
	}
	eth := f.nic(t, nicID, "")
	f.sysfs.AddVPCI(t, nic2, eth) // a vPCI adapter resolves through its PCI path
	if err := f.mgr.AddAdapter(ctx(t), &prot.LCOWNetworkAdapter{
		NamespaceID: nsID, ID: nic2, VPCIAssigned: true,
		IPConfigs: []prot.IPConfig{{IPAddress: "10.80.0.2", PrefixLength: 24}},
	}); err != nil {
		t.Fatalf("AddAdapter(vPCI): %v", err)
	}
	if f.pod.Link(t, eth) == nil {
		t.Error("vPCI adapter not moved")
	}
	f.mgr.RemoveNamespace(nsID)
	if _, ok := f.mgr.Adapters(nsID); ok {
		t.Error("record still there after RemoveNamespace")
	}
}

// TestBindHostRollback: a failed in-place configuration restores the link in
// the root namespace, including its up state.
func TestBindHostRollback(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	eth := f.nic(t, nicID, "10.31.0.1/24")
	if err := f.uvm.NL.LinkSetUp(f.uvm.Link(t, eth)); err != nil {
		t.Fatal(err)
	}
	route := prot.Route{NextHop: "10.31.0.1", DestinationPrefix: "10.99.0.0/16"}
	if err := f.mgr.AddAdapter(ctx(t), &prot.LCOWNetworkAdapter{
		NamespaceID: nsID, ID: nicID, EncapOverhead: 10,
		IPConfigs: []prot.IPConfig{{IPAddress: "10.31.0.9", PrefixLength: 24}},
		Routes:    []prot.Route{route, route},
	}); err != nil {
		t.Fatal(err)
	}
	before := f.snapshot(t, eth)
	beforeRoutes := f.uvm.Routes(t, unix.AF_INET, 0)
	if !before.up {
		t.Fatal("fixture link is not up")
	}
	if err := f.mgr.BindHost(ctx(t), nsID); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("BindHost = %v, want EEXIST from the duplicate route", err)
	}
	if after := f.snapshot(t, eth); !reflect.DeepEqual(before, after) {
		t.Errorf("in-place configuration not rolled back:\nbefore %+v\nafter  %+v", before, after)
	}
	if after := f.uvm.Routes(t, unix.AF_INET, 0); !reflect.DeepEqual(beforeRoutes, after) {
		t.Errorf("root routes changed: before %v after %v", beforeRoutes, after)
	}
}

// TestConcurrentNamespaces drives several namespaces at once; run with -race.
func TestConcurrentNamespaces(t *testing.T) {
	f := newFixture(t, netconf.DHCPClient{})
	ids := []string{nicID, nic2, nic3}
	pods := make([]*nettest.NetNS, len(ids))
	names := make([]string, len(ids))
	for i, id := range ids {
		pods[i] = nettest.NewNetNS(t)
		names[i] = f.nic(t, id, "")
	}
	errs := make(chan error, len(ids))
	for i, id := range ids {
		go func() {
			ns := "ns-" + id
			a := &prot.LCOWNetworkAdapter{
				NamespaceID: ns, ID: id, DNSServerList: "10.0.0.10",
				IPConfigs: []prot.IPConfig{{IPAddress: "10.90.0." + string(rune('1'+i)), PrefixLength: 24}},
			}
			if err := f.mgr.AddAdapter(ctx(t), a); err != nil {
				errs <- err
				return
			}
			if _, err := f.mgr.AdapterSettings(ns); err != nil {
				errs <- err
				return
			}
			errs <- f.mgr.Bind(ctx(t), ns, pods[i].Pid)
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for i := range ids {
		if pods[i].Link(t, names[i]) == nil {
			t.Errorf("adapter %s not in its pod namespace", names[i])
		}
	}
}

// resolvConf is the resolv.conf a sandbox of the namespace gets.
func resolvConf(t *testing.T, m *network.Manager, nsID string) string {
	t.Helper()
	settings, err := m.AdapterSettings(nsID)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := oci.DNSFromAdapters(settings)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dns.ResolvConf()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
