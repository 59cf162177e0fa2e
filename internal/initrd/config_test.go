package initrd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/network/netconf"
	"github.com/opengcs/opengcs/internal/network/nettest"
)

func TestDHCPScriptWhereTheGCSLooks(t *testing.T) {
	if "/"+DHCPScriptPath != netconf.DefaultDHCPScript {
		t.Fatalf("image carries the lease script at /%s, the gcs runs %s", DHCPScriptPath, netconf.DefaultDHCPScript)
	}
}

// TestUDHCPCScript runs the image's lease script under busybox udhcpc, the
// way the gcs runs it (netconf.DHCPClient: -q -i <if> -s <script>), against
// busybox udhcpd in a network namespace, and checks what it configured:
// once with busybox's ip applet, which is the ip of the image, and once
// with iproute2's.
func TestUDHCPCScript(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("busybox missing; test/setup/deps.sh installs busybox-static")
		}
		t.Skip("busybox not installed")
	}
	for _, tc := range []struct {
		name      string
		busyboxIP bool
	}{{"busybox ip", true}, {"iproute2 ip", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.busyboxIP {
				bin := t.TempDir()
				if err := os.Symlink(bb, filepath.Join(bin, "ip")); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
			} else if _, err := exec.LookPath("ip"); err != nil {
				t.Skip("iproute2 not installed")
			}
			testUDHCPCScript(t, bb)
		})
	}
}

func testUDHCPCScript(t *testing.T, bb string) {
	ns := nettest.NewNetNS(t)
	nic, peer := nettest.Veth(t, ns, "10.78.0.1/24")
	dir := t.TempDir()
	script := filepath.Join(dir, "udhcpc_config.script")
	if err := os.WriteFile(script, UDHCPCScript, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "udhcpd.conf")
	leases := filepath.Join(dir, "leases")
	content := fmt.Sprintf("start 10.78.0.100\nend 10.78.0.110\ninterface %s\nlease_file %s\npidfile %s\n"+
		"option subnet 255.255.255.0\noption router 10.78.0.1 10.78.0.2\noption broadcast 10.78.0.255\n",
		peer, leases, filepath.Join(dir, "udhcpd.pid"))
	if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leases, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("nsenter", "--net="+ns.Path, bb, "udhcpd", "-f", conf)
	if err := srv.Start(); err != nil {
		t.Fatalf("start udhcpd: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	link := ns.Link(t, nic)
	if err := ns.NL.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	// A stale address the lease must replace.
	if err := exec.Command("nsenter", "--net="+ns.Path, "ip", "addr", "add", "192.0.2.9/24", "dev", nic).Run(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := netconf.DHCPClient{Command: []string{bb, "udhcpc", "-t", "20", "-T", "1"}, Script: script, Timeout: 60 * time.Second}
	if err := c.Run(ctx, logging.Discard(), ns.Handle, nic); err != nil {
		t.Fatalf("udhcpc with the image's script: %v", err)
	}
	addrs := ns.Addrs(t, nic)
	if len(addrs) != 1 {
		t.Fatalf("addresses %q, want only the lease", addrs)
	}
	p := netip.MustParsePrefix(addrs[0])
	if p.Bits() != 24 || p.Addr().Less(netip.MustParseAddr("10.78.0.100")) || netip.MustParseAddr("10.78.0.110").Less(p.Addr()) {
		t.Errorf("leased address %s outside the server's pool", p)
	}
	var defaults []string
	for _, r := range ns.Routes(t, unix.AF_INET, unix.RT_TABLE_MAIN) {
		if r.Dst == "default" {
			defaults = append(defaults, fmt.Sprintf("%s/%s/%d", r.Gw, r.Dev, r.Metric))
		}
	}
	slices.Sort(defaults)
	want := []string{"10.78.0.1/" + nic + "/0", "10.78.0.2/" + nic + "/1"}
	if !slices.Equal(defaults, want) {
		t.Errorf("default routes %q, want %q", defaults, want)
	}
}
