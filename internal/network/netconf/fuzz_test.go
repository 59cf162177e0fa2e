package netconf

import (
	"net/netip"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// FuzzParse feeds host-controlled strings to Parse: it must never panic, and
// whatever it accepts must be applicable.
func FuzzParse(f *testing.F) {
	f.Add("10.244.1.7", uint8(24), "10.244.1.1", "0.0.0.0/0", uint16(0), false)
	f.Add("fd00::5", uint8(64), "::", "::/0", uint16(3), true)
	f.Add("::ffff:10.0.0.1", uint8(120), "", "10.0.0.0/8", uint16(0), false)
	f.Add("10.0.0.2", uint8(8), "10.0.0.1", "::ffff:10.0.0.0/104", uint16(0), false)
	f.Add("fe80::1%eth0", uint8(64), "fe80::2%1", "fe80::/10", uint16(0), true)
	f.Fuzz(func(t *testing.T, ip string, bits uint8, nextHop, dst string, metric uint16, low bool) {
		in := &prot.LCOWNetworkAdapter{
			IPConfigs: []prot.IPConfig{{IPAddress: ip, PrefixLength: bits}},
			Routes:    []prot.Route{{NextHop: nextHop, DestinationPrefix: dst, Metric: metric}},
		}
		cfg, err := Parse(in, low)
		if err != nil {
			return
		}
		for _, p := range cfg.Addresses {
			if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() || p.Addr().IsUnspecified() {
				t.Fatalf("accepted address %v", p)
			}
		}
		if len(cfg.Routes) == 1 && !cfg.Routes[0].Dst.IsValid() && dst != "" {
			if p, err := netip.ParsePrefix(dst); err != nil || p.Bits() != 0 && !(p.Addr().Is4In6() && p.Bits() == 96) {
				t.Fatalf("destination %q turned into a default route", dst)
			}
		}
		for _, r := range cfg.Routes {
			if !r.Dst.IsValid() && !r.Gateway.IsValid() {
				t.Fatalf("accepted a route with neither destination nor gateway: %+v", r)
			}
			if r.Dst.IsValid() && (r.Dst.Bits() == 0 || r.Dst.Addr().Is6() != r.IPv6 || r.Dst != r.Dst.Masked()) {
				t.Fatalf("bad destination in %+v", r)
			}
			if r.Gateway.IsValid() && (r.Gateway.Is6() != r.IPv6 || r.Gateway.IsUnspecified() || r.Gateway.Zone() != "") {
				t.Fatalf("bad gateway in %+v", r)
			}
			if low && metric == 0 && r.Metric != LowMetric {
				t.Fatalf("low-metric route without metric 500: %+v", r)
			}
		}
	})
}
