package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot fails the test when it does not run as root: the fixtures
// need CAP_SYS_ADMIN and CAP_NET_ADMIN.
func RequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, veth pairs)")
	}
}

// NetNS is a network namespace kept alive by a sleeping process.
type NetNS struct {
	// Pid is the process that owns the namespace.
	Pid int
	// Path is /proc/<Pid>/ns/net.
	Path string
	// Handle is an open handle on the namespace (closed at cleanup).
	Handle netns.NsHandle
	// NL is a netlink handle inside the namespace (closed at cleanup).
	NL *netlink.Handle
}

// NewNetNS starts a process in a new network namespace with its loopback
// down, exactly as a freshly created container namespace. The process is
// killed and the handles closed in t.Cleanup, which destroys the namespace
// and every interface still in it.
func NewNetNS(t *testing.T) *NetNS {
	t.Helper()
	RequireRoot(t)
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start process in a new network namespace: %v", err)
	}
	ns := &NetNS{Pid: cmd.Process.Pid, Path: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), Handle: netns.None()}
	t.Cleanup(func() {
		if ns.NL != nil {
			ns.NL.Close()
		}
		if ns.Handle.IsOpen() {
			_ = ns.Handle.Close()
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var err error
	ns.Handle, err = netns.GetFromPid(ns.Pid)
	if err != nil {
		t.Fatalf("open netns of pid %d: %v", ns.Pid, err)
	}
	self, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if ns.Handle.Equal(self) {
		t.Fatal("the sleeping process did not get a new network namespace")
	}
	ns.NL, err = netlink.NewHandleAt(ns.Handle, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in netns: %v", err)
	}
	return ns
}

// UniqueName returns a short interface name that no other test uses.
func UniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// Veth creates a veth pair with both ends in ns and returns the names of the
// end a test will hand out (the "NIC") and of its peer. The peer is set up
// with peerAddr (CIDR, optional) so the NIC has a live link partner.
func Veth(t *testing.T, ns *NetNS, peerAddr string) (nic, peer string) {
	t.Helper()
	nic, peer = UniqueName(t, "ntn"), UniqueName(t, "ntp")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nic, MTU: 1500}, PeerName: peer}
	if err := ns.NL.LinkAdd(veth); err != nil {
		t.Fatalf("create veth %s/%s: %v", nic, peer, err)
	}
	t.Cleanup(func() {
		// Normally destroyed with the namespaces; delete explicitly in case
		// the namespace outlives the test through a leaked handle.
		if l, err := ns.NL.LinkByName(peer); err == nil {
			_ = ns.NL.LinkDel(l)
		}
	})
	p, err := ns.NL.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if peerAddr != "" {
		a, err := netlink.ParseAddr(peerAddr)
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.NL.AddrAdd(p, a); err != nil {
			t.Fatalf("address %s on %s: %v", peerAddr, peer, err)
		}
	}
	if err := ns.NL.LinkSetUp(p); err != nil {
		t.Fatal(err)
	}
	return nic, peer
}

// Sysfs is a fake sysfs tree.
type Sysfs struct{ Root string }

// NewSysfs returns an empty fake sysfs tree under t.TempDir().
func NewSysfs(t *testing.T) *Sysfs { return &Sysfs{Root: t.TempDir()} }

// AddNetvsc makes <root>/bus/vmbus/devices/<lower(id)>/net/<ifname>.
func (s *Sysfs) AddNetvsc(t *testing.T, id, ifname string) {
	t.Helper()
	dir := filepath.Join(s.Root, "bus", "vmbus", "devices", strings.ToLower(id), "net", ifname)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// AddVPCI makes the vPCI layout for id naming ifname.
func (s *Sysfs) AddVPCI(t *testing.T, id, ifname string) {
	t.Helper()
	dir := filepath.Join(s.Root, "bus", "vmbus", "devices", strings.ToLower(id), "pci1a2b:00", "1a2b:00:00.0", "net", ifname)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Link returns the link called name in ns, or nil when there is none.
func (ns *NetNS) Link(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		t.Fatalf("look up link %s: %v", name, err)
	}
	return l
}

// Addrs returns the addresses of link name in ns as CIDR strings (IPv6
// link-local addresses left out).
func (ns *NetNS) Addrs(t *testing.T, name string) []string {
	t.Helper()
	l := ns.Link(t, name)
	if l == nil {
		t.Fatalf("no link %s", name)
	}
	addrs, err := ns.NL.AddrList(l, unix.AF_UNSPEC)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, a.IPNet.String())
	}
	return out
}

// RouteInfo is the part of a route the tests compare.
type RouteInfo struct {
	Dst    string // "default" or CIDR
	Gw     string // "" for none
	Dev    string
	Metric int
	Table  int
}

func (r RouteInfo) String() string {
	return fmt.Sprintf("%s via %q dev %s metric %d table %d", r.Dst, r.Gw, r.Dev, r.Metric, r.Table)
}

// Routes lists the unicast routes of family in table (all tables if 0) of
// ns, skipping kernel-made local, broadcast and IPv6 link-local/multicast
// routes.
func (ns *NetNS) Routes(t *testing.T, family, table int) []RouteInfo {
	t.Helper()
	filter := &netlink.Route{Table: table}
	mask := netlink.RT_FILTER_TABLE
	if table == 0 {
		filter.Table = unix.RT_TABLE_UNSPEC
	}
	routes, err := ns.NL.RouteListFiltered(family, filter, mask)
	if err != nil {
		t.Fatal(err)
	}
	var out []RouteInfo
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		if r.Dst != nil && (r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast()) {
			continue
		}
		ri := RouteInfo{Dst: "default", Metric: r.Priority, Table: r.Table}
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				ri.Dst = r.Dst.String()
			}
		}
		if r.Gw != nil {
			ri.Gw = r.Gw.String()
		}
		if l, err := ns.NL.LinkByIndex(r.LinkIndex); err == nil {
			ri.Dev = l.Attrs().Name
		}
		out = append(out, ri)
	}
	return out
}

// Rules lists the policy rules of family in ns that select table, as
// "from <src> lookup <table> pref <priority>".
func (ns *NetNS) Rules(t *testing.T, family, table int) []string {
	t.Helper()
	rules, err := ns.NL.RuleList(family)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		if r.Table != table {
			continue
		}
		src := "all"
		if r.Src != nil {
			src = r.Src.String()
		}
		out = append(out, fmt.Sprintf("from %s lookup %d pref %d", src, r.Table, r.Priority))
	}
	return out
}

// IsUp reports whether the link has IFF_UP.
func IsUp(l netlink.Link) bool { return l.Attrs().Flags&net.FlagUp != 0 }
