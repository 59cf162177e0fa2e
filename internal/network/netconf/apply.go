package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
)

// minMTU is the smallest MTU an IPv4 link may have.
const minMTU = 68

// Configurator applies adapter configurations. Root is the namespace where
// hot-added NICs appear (the utility VM's root network namespace); the
// Configurator does not own it.
type Configurator struct {
	Root netns.NsHandle
	DHCP DHCPClient
	// Log receives a line per adapter configured or rolled back; nil
	// discards them.
	Log *logrus.Entry
}

// step is one change already made, with the way to revert it.
type step struct {
	what string
	undo func() error
}

// Applied is a configuration that has been applied. Undo reverts it;
// Release keeps it. Exactly one of them must be called.
type Applied struct {
	ifname string
	log    *logrus.Entry
	steps  []step
	root   *netlink.Handle
	dest   *netlink.Handle
}

// Release keeps the configuration and frees the netlink handles.
func (a *Applied) Release() {
	if a.dest != nil && a.dest != a.root {
		a.dest.Close()
	}
	if a.root != nil {
		a.root.Close()
	}
	a.steps, a.root, a.dest = nil, nil, nil
}

// Undo reverts every step, newest first, and frees the handles. It carries
// on past failures and reports them all.
func (a *Applied) Undo() error {
	var errs []error
	for i := len(a.steps) - 1; i >= 0; i-- {
		s := a.steps[i]
		if err := s.undo(); err != nil {
			a.log.WithField("step", s.what).WithError(err).Warn("network rollback step failed")
			errs = append(errs, fmt.Errorf("undo %s: %w", s.what, err))
		}
	}
	a.Release()
	return errors.Join(errs...)
}

func (a *Applied) push(what string, undo func() error) {
	a.steps = append(a.steps, step{what: what, undo: undo})
}

// Apply moves the link ifname from the root namespace into dest and
// configures it there. When dest is netns.None() the link is configured in
// place in the root namespace (host networking). On error nothing is left
// changed.
func (c *Configurator) Apply(ctx context.Context, ifname string, dest netns.NsHandle, cfg *Config) (_ *Applied, err error) {
	log := logging.Or(c.Log).WithFields(logrus.Fields{"ifname": ifname, "inPlace": !dest.IsOpen()})
	a := &Applied{ifname: ifname, log: log}
	defer func() {
		if err != nil {
			if uerr := a.Undo(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("rollback incomplete: %w", uerr))
			}
		}
	}()

	a.root, err = netlink.NewHandleAt(c.Root, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in root namespace: %w", err)
	}
	a.dest = a.root
	if dest.IsOpen() {
		if dest.Equal(c.Root) {
			return nil, fmt.Errorf("target network namespace is the root namespace")
		}
		a.dest, err = netlink.NewHandleAt(dest, unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("netlink handle in target namespace: %w", err)
		}
		if err := c.move(a, ifname, dest); err != nil {
			return nil, err
		}
	}

	link, err := a.dest.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", ifname, err)
	}
	if dest.IsOpen() {
		if err := loopbackUp(a.dest); err != nil {
			return nil, err
		}
	}
	if err := setMTU(a, link, cfg.EncapOverhead); err != nil {
		return nil, err
	}
	if !cfg.DHCP() {
		if err := setUp(a, link); err != nil {
			return nil, err
		}
		if err := addAddresses(a, link, cfg); err != nil {
			return nil, err
		}
	}
	if err := addRoutes(a, link, cfg); err != nil {
		return nil, err
	}
	if cfg.DHCP() {
		if err := setUp(a, link); err != nil {
			return nil, err
		}
		ns := dest
		if !ns.IsOpen() {
			ns = c.Root
		}
		if err := c.DHCP.Run(ctx, log, ns, ifname); err != nil {
			return nil, err
		}
	}
	log.WithFields(logrus.Fields{"addresses": len(cfg.Addresses), "routes": len(cfg.Routes), "lowMetric": cfg.LowMetric}).Debug("network adapter configured")
	return a, nil
}

// move sets the link down and moves it into dest. The undo moves it back and
// restores its up/down state.
func (c *Configurator) move(a *Applied, ifname string, dest netns.NsHandle) error {
	link, err := a.root.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find link %s in root namespace: %w", ifname, err)
	}
	wasUp := link.Attrs().Flags&net.FlagUp != 0
	if err := a.root.LinkSetDown(link); err != nil {
		return fmt.Errorf("set link %s down: %w", ifname, err)
	}
	root, destH := a.root, a.dest
	a.push("set link down", func() error {
		if !wasUp {
			return nil
		}
		l, err := root.LinkByName(ifname)
		if err != nil {
			return err
		}
		return root.LinkSetUp(l)
	})
	if err := a.root.LinkSetNsFd(link, int(dest)); err != nil {
		return fmt.Errorf("move link %s into namespace: %w", ifname, err)
	}
	rootFd := int(c.Root)
	a.push("move link", func() error {
		l, err := destH.LinkByName(ifname)
		if err != nil {
			return err
		}
		if err := destH.LinkSetDown(l); err != nil {
			return err
		}
		return destH.LinkSetNsFd(l, rootFd)
	})
	return nil
}

func loopbackUp(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find loopback: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set loopback up: %w", err)
	}
	return nil
}

func setMTU(a *Applied, link netlink.Link, overhead uint16) error {
	if overhead == 0 {
		return nil
	}
	old := link.Attrs().MTU
	mtu := old - int(overhead)
	if mtu < minMTU {
		return fmt.Errorf("%w: EncapOverhead %d leaves MTU %d of link %s below %d", ErrInvalidConfig, overhead, mtu, link.Attrs().Name, minMTU)
	}
	if err := a.dest.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("set MTU of %s to %d: %w", link.Attrs().Name, mtu, err)
	}
	h := a.dest
	a.push("set MTU", func() error { return h.LinkSetMTU(link, old) })
	return nil
}

func setUp(a *Applied, link netlink.Link) error {
	if link.Attrs().Flags&net.FlagUp != 0 {
		return nil // already up (host networking): nothing to undo
	}
	if err := a.dest.LinkSetUp(link); err != nil {
		return fmt.Errorf("set link %s up: %w", link.Attrs().Name, err)
	}
	h := a.dest
	a.push("set link up", func() error { return h.LinkSetDown(link) })
	return nil
}

func addAddresses(a *Applied, link netlink.Link, cfg *Config) error {
	h := a.dest
	for _, p := range cfg.Addresses {
		addr := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			// The host assigned the address; duplicate detection would only
			// delay it.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p, link.Attrs().Name, err)
		}
		a.push("add address "+p.String(), func() error { return ignoreMissing(h.AddrDel(link, addr)) })
		if !cfg.PolicyRouting() {
			continue
		}
		rule := netlink.NewRule()
		rule.Src = ipNet(netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
		rule.Table = PolicyTable
		rule.Priority = PolicyRulePriority
		rule.Family = family(p.Addr().Is6())
		if err := h.RuleAdd(rule); err != nil {
			return fmt.Errorf("add rule from %s lookup %d: %w", p.Addr(), PolicyTable, err)
		}
		a.push("add rule from "+p.Addr().String(), func() error { return ignoreMissing(h.RuleDel(rule)) })
	}
	return nil
}

func addRoutes(a *Applied, link netlink.Link, cfg *Config) error {
	h := a.dest
	table := unix.RT_TABLE_MAIN
	if cfg.PolicyRouting() {
		table = PolicyTable
	}
	for _, r := range cfg.Routes {
		route := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Family:    family(r.IPv6),
			Priority:  r.Metric,
			Table:     table,
			Scope:     netlink.SCOPE_UNIVERSE,
		}
		if r.Dst.IsValid() {
			route.Dst = ipNet(r.Dst)
		}
		if r.Gateway.IsValid() {
			route.Gw = net.IP(r.Gateway.AsSlice())
		} else {
			route.Scope = netlink.SCOPE_LINK
		}
		err := h.RouteAdd(route)
		if errors.Is(err, unix.ENETUNREACH) && r.Gateway.IsValid() {
			// The gateway is outside every on-link prefix: make it a host
			// address of the link so it becomes reachable, then retry.
			gw := netip.PrefixFrom(r.Gateway, r.Gateway.BitLen())
			addr := &netlink.Addr{IPNet: ipNet(gw)}
			if r.Gateway.Is6() {
				addr.Flags = unix.IFA_F_NODAD
			}
			if aerr := h.AddrAdd(link, addr); aerr != nil && !errors.Is(aerr, unix.EEXIST) {
				return fmt.Errorf("add gateway address %s to %s after %v: %w", gw, link.Attrs().Name, err, aerr)
			} else if aerr == nil {
				a.push("add gateway address "+gw.String(), func() error { return ignoreMissing(h.AddrDel(link, addr)) })
			}
			err = h.RouteAdd(route)
		}
		if err != nil {
			return fmt.Errorf("add route %s: %w", describe(r, table), err)
		}
		a.push("add route "+describe(r, table), func() error { return ignoreMissing(h.RouteDel(route)) })
	}
	return nil
}

func describe(r Route, table int) string {
	dst := "default"
	if r.Dst.IsValid() {
		dst = r.Dst.String()
	}
	s := dst
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	return fmt.Sprintf("%s metric %d table %d", s, r.Metric, table)
}

func family(v6 bool) int {
	if v6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ignoreMissing treats "already gone" as success during rollback: moving a
// link between namespaces drops its addresses and routes.
func ignoreMissing(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}
