package netconf

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		in        prot.LCOWNetworkAdapter
		lowMetric bool
		want      *Config
		wantErr   bool
	}{
		{
			name: "address and default route",
			in: prot.LCOWNetworkAdapter{
				IPConfigs: []prot.IPConfig{{IPAddress: "10.244.1.7", PrefixLength: 24}},
				Routes:    []prot.Route{{NextHop: "10.244.1.1", DestinationPrefix: "0.0.0.0/0"}},
			},
			want: &Config{
				Addresses: []netip.Prefix{netip.MustParsePrefix("10.244.1.7/24")},
				Routes:    []Route{{Gateway: netip.MustParseAddr("10.244.1.1")}},
			},
		},
		{
			name: "low metric fills in metric 500 only where none is given",
			in: prot.LCOWNetworkAdapter{
				EncapOverhead: 50,
				IPConfigs:     []prot.IPConfig{{IPAddress: "fd00::5", PrefixLength: 64}},
				Routes: []prot.Route{
					{NextHop: "fd00::1", DestinationPrefix: "::/0"},
					{NextHop: "fd00::1", DestinationPrefix: "2001:db8::1/32", Metric: 9},
				},
			},
			lowMetric: true,
			want: &Config{
				EncapOverhead: 50,
				LowMetric:     true,
				Addresses:     []netip.Prefix{netip.MustParsePrefix("fd00::5/64")},
				Routes: []Route{
					{Gateway: netip.MustParseAddr("fd00::1"), Metric: LowMetric, IPv6: true},
					{Dst: netip.MustParsePrefix("2001:db8::/32"), Gateway: netip.MustParseAddr("fd00::1"), Metric: 9, IPv6: true},
				},
			},
		},
		{
			name: "default routes without gateway are skipped",
			in: prot.LCOWNetworkAdapter{Routes: []prot.Route{
				{NextHop: "0.0.0.0", DestinationPrefix: "0.0.0.0/0"},
				{NextHop: "::", DestinationPrefix: "::/0"},
			}},
			want: &Config{},
		},
		{
			name: "on-link route",
			in:   prot.LCOWNetworkAdapter{Routes: []prot.Route{{DestinationPrefix: "172.16.0.0/12"}, {NextHop: "0.0.0.0", DestinationPrefix: "10.0.0.0/8"}}},
			want: &Config{Routes: []Route{{Dst: netip.MustParsePrefix("172.16.0.0/12")}, {Dst: netip.MustParsePrefix("10.0.0.0/8")}}},
		},
		{
			name: "gateway only means default route",
			in:   prot.LCOWNetworkAdapter{Routes: []prot.Route{{NextHop: "10.0.0.1", Metric: 4}}},
			want: &Config{Routes: []Route{{Gateway: netip.MustParseAddr("10.0.0.1"), Metric: 4}}},
		},
		{name: "empty address", in: prot.LCOWNetworkAdapter{IPConfigs: []prot.IPConfig{{PrefixLength: 24}}}, wantErr: true},
		{name: "zone", in: prot.LCOWNetworkAdapter{IPConfigs: []prot.IPConfig{{IPAddress: "fe80::1%eth0", PrefixLength: 64}}}, wantErr: true},
		{name: "unspecified address", in: prot.LCOWNetworkAdapter{IPConfigs: []prot.IPConfig{{IPAddress: "0.0.0.0"}}}, wantErr: true},
		{name: "multicast address", in: prot.LCOWNetworkAdapter{IPConfigs: []prot.IPConfig{{IPAddress: "224.0.0.1", PrefixLength: 4}}}, wantErr: true},
		{name: "IPv6 prefix too long", in: prot.LCOWNetworkAdapter{IPConfigs: []prot.IPConfig{{IPAddress: "fd00::1", PrefixLength: 129}}}, wantErr: true},
		{name: "empty route", in: prot.LCOWNetworkAdapter{Routes: []prot.Route{{}}}, wantErr: true},
		{name: "bad route prefix", in: prot.LCOWNetworkAdapter{Routes: []prot.Route{{DestinationPrefix: "10.0.0.0"}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(&tt.in, tt.lowMetric)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("Parse = %+v, %v; want ErrInvalidConfig", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseMappedDestination(t *testing.T) {
	cfg, err := Parse(&prot.LCOWNetworkAdapter{Routes: []prot.Route{{NextHop: "10.0.0.1", DestinationPrefix: "::ffff:10.1.0.0/112"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := Route{Dst: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.1")}
	if len(cfg.Routes) != 1 || cfg.Routes[0] != want {
		t.Fatalf("routes = %+v, want %+v", cfg.Routes, want)
	}
	if _, err := Parse(&prot.LCOWNetworkAdapter{Routes: []prot.Route{{NextHop: "10.0.0.1", DestinationPrefix: "::ffff:10.1.0.0/64"}}}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("short IPv4-mapped prefix: %v, want ErrInvalidConfig", err)
	}
}
