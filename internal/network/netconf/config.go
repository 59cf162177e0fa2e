package netconf

import (
	"fmt"
	"net/netip"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// LowMetric is the route metric used for an adapter with low metric when the
// host gave none.
const LowMetric = 500

// PolicyTable is the routing table of low-metric adapters' routes.
const PolicyTable = 101

// PolicyRulePriority is the priority of the "from <address> lookup
// PolicyTable" rules.
const PolicyRulePriority = 5

// Config is a validated configuration of one adapter.
type Config struct {
	// Addresses are the host-assigned addresses with their prefix length
	// (the address bits are kept, not masked). Empty means DHCP.
	Addresses []netip.Prefix
	// Routes are the routes to add, in order.
	Routes []Route
	// EncapOverhead is subtracted from the link MTU when non-zero.
	EncapOverhead uint16
	// LowMetric makes the adapter secondary: a policy rule per address sends
	// traffic from it to PolicyTable, its routes go there, and their default
	// metric is LowMetric.
	LowMetric bool
}

// Route is one route of an adapter.
type Route struct {
	// Dst is the destination; the zero Prefix means the default route.
	Dst netip.Prefix
	// Gateway is the next hop; the zero Addr means on-link.
	Gateway netip.Addr
	// Metric is the route priority (0 = kernel default).
	Metric int
	// IPv6 is the route's address family.
	IPv6 bool
}

// DHCP reports whether the adapter gets its address from DHCP.
func (c *Config) DHCP() bool { return len(c.Addresses) == 0 }

// PolicyRouting reports whether policy rules are created for the adapter:
// only a low-metric adapter with static addresses gets them.
func (c *Config) PolicyRouting() bool { return c.LowMetric && !c.DHCP() }

// Parse validates the host's settings for one adapter. lowMetric is the
// effective low-metric flag (the host's EnableLowMetric, or the position of
// the adapter under policy-based routing).
func Parse(a *prot.LCOWNetworkAdapter, lowMetric bool) (*Config, error) {
	cfg := &Config{EncapOverhead: a.EncapOverhead, LowMetric: lowMetric}
	for i, ipc := range a.IPConfigs {
		addr, err := netip.ParseAddr(ipc.IPAddress)
		if err != nil || addr.Zone() != "" {
			return nil, fmt.Errorf("%w: IPConfigs[%d]: bad IP address %q", ErrInvalidConfig, i, ipc.IPAddress)
		}
		addr = addr.Unmap()
		if addr.IsUnspecified() || addr.IsMulticast() {
			return nil, fmt.Errorf("%w: IPConfigs[%d]: %s cannot be assigned to an interface", ErrInvalidConfig, i, addr)
		}
		if int(ipc.PrefixLength) > addr.BitLen() {
			return nil, fmt.Errorf("%w: IPConfigs[%d]: prefix length %d is too long for %s", ErrInvalidConfig, i, ipc.PrefixLength, addr)
		}
		cfg.Addresses = append(cfg.Addresses, netip.PrefixFrom(addr, int(ipc.PrefixLength)))
	}
	for i, r := range a.Routes {
		route, skip, err := parseRoute(r, lowMetric)
		if err != nil {
			return nil, fmt.Errorf("%w: Routes[%d]: %w", ErrInvalidConfig, i, err)
		}
		if !skip {
			cfg.Routes = append(cfg.Routes, route)
		}
	}
	return cfg, nil
}

// parseRoute turns one host route into a Route. skip is true for a default
// route whose next hop is the unspecified address ("no gateway").
func parseRoute(r prot.Route, lowMetric bool) (route Route, skip bool, err error) {
	var dst netip.Prefix
	isDefault := false
	if r.DestinationPrefix != "" {
		dst, err = netip.ParsePrefix(r.DestinationPrefix)
		if err != nil || dst.Addr().Zone() != "" {
			return Route{}, false, fmt.Errorf("bad destination prefix %q", r.DestinationPrefix)
		}
		if dst.Addr().Is4In6() {
			if dst.Bits() < 96 {
				return Route{}, false, fmt.Errorf("destination prefix %q mixes IPv4-mapped and IPv6 addresses", r.DestinationPrefix)
			}
			dst = netip.PrefixFrom(dst.Addr().Unmap(), dst.Bits()-96)
		}
		dst = dst.Masked()
		isDefault = dst.Bits() == 0
	}
	var gw netip.Addr
	if r.NextHop != "" {
		gw, err = netip.ParseAddr(r.NextHop)
		if err != nil || gw.Zone() != "" {
			return Route{}, false, fmt.Errorf("bad next hop %q", r.NextHop)
		}
		gw = gw.Unmap()
	}
	if isDefault && gw.IsValid() && gw.IsUnspecified() {
		return Route{}, true, nil
	}
	if dst.IsValid() && gw.IsValid() && dst.Addr().Is4() != gw.Is4() {
		return Route{}, false, fmt.Errorf("destination %s and next hop %s are of different address families", dst, gw)
	}
	if gw.IsValid() && gw.IsUnspecified() {
		gw = netip.Addr{} // an on-link route to a non-default destination
	}
	if isDefault {
		dst = netip.Prefix{}
	}
	if !dst.IsValid() && !gw.IsValid() {
		return Route{}, false, fmt.Errorf("route has neither a destination nor a gateway (DestinationPrefix %q, NextHop %q)", r.DestinationPrefix, r.NextHop)
	}
	route = Route{Dst: dst, Gateway: gw, Metric: int(r.Metric)}
	if route.Metric == 0 && lowMetric {
		route.Metric = LowMetric
	}
	if dst.IsValid() {
		route.IPv6 = dst.Addr().Is6()
	} else {
		route.IPv6 = gw.Is6()
	}
	return route, false, nil
}
