package netconf_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/network/netconf"
	"github.com/opengcs/opengcs/internal/network/nettest"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// leaseScript is a minimal udhcpc event script: it assigns the leased
// address and reports nothing else.
const leaseScript = `#!/bin/sh
case "$1" in
bound|renew) busybox ip addr add "$ip/$mask" dev "$interface" || exit 1 ;;
esac
exit 0
`

// startDHCPServer runs busybox udhcpd in ns on iface, leasing from
// 10.77.0.100-110.
func startDHCPServer(t *testing.T, ns *nettest.NetNS, iface string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "udhcpd.conf")
	leases := filepath.Join(dir, "leases")
	content := fmt.Sprintf("start 10.77.0.100\nend 10.77.0.110\ninterface %s\nlease_file %s\npidfile %s\noption subnet 255.255.255.0\n",
		iface, leases, filepath.Join(dir, "udhcpd.pid"))
	if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leases, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns.Path, "busybox", "udhcpd", "-f", conf)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start udhcpd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

func TestApplyDHCP(t *testing.T) {
	uvm, pod := nettest.NewNetNS(t), nettest.NewNetNS(t)
	nic, peer := nettest.Veth(t, uvm, "10.77.0.1/24")
	startDHCPServer(t, uvm, peer)
	script := filepath.Join(t.TempDir(), "udhcpc.script")
	if err := os.WriteFile(script, []byte(leaseScript), 0o755); err != nil {
		t.Fatal(err)
	}

	cfg, err := netconf.Parse(&prot.LCOWNetworkAdapter{EncapOverhead: 20}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := netconf.Configurator{Root: uvm.Handle, DHCP: netconf.DHCPClient{
		Command: []string{"busybox", "udhcpc", "-t", "20", "-T", "1"},
		Script:  script,
		Timeout: 60 * time.Second,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	applied, err := c.Apply(ctx, nic, pod.Handle, cfg)
	if err != nil {
		t.Fatalf("Apply with DHCP: %v", err)
	}
	applied.Release()
	assertThreadsInProcessNetNS(t)

	l := pod.Link(t, nic)
	if l == nil {
		t.Fatal("link not moved into the pod namespace")
	}
	if l.Attrs().MTU != 1480 {
		t.Errorf("MTU = %d, want 1480", l.Attrs().MTU)
	}
	addrs := pod.Addrs(t, nic)
	if len(addrs) != 1 {
		t.Fatalf("addresses after DHCP = %q, want one lease", addrs)
	}
	p := netip.MustParsePrefix(addrs[0])
	lo, hi := netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.77.0.110")
	if p.Bits() != 24 || p.Addr().Less(lo) || hi.Less(p.Addr()) {
		t.Errorf("leased address %s outside the server's pool", p)
	}
}

// TestApplyDHCPFailureRollsBack: a failing or hanging DHCP client leaves the
// link back in the root namespace, unchanged.
func TestApplyDHCPFailureRollsBack(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		timeout time.Duration
		cause   error
	}{
		{"client fails", []string{"sh", "-c", "echo no lease >&2; exit 3", "udhcpc"}, 10 * time.Second, nil},
		{"client hangs", []string{"sh", "-c", "exec sleep 60", "udhcpc"}, 200 * time.Millisecond, context.DeadlineExceeded},
		{"client missing", []string{"/nonexistent/udhcpc"}, 10 * time.Second, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uvm, pod := nettest.NewNetNS(t), nettest.NewNetNS(t)
			nic, _ := nettest.Veth(t, uvm, "")
			before := uvm.Link(t, nic)
			cfg, err := netconf.Parse(&prot.LCOWNetworkAdapter{EncapOverhead: 100}, false)
			if err != nil {
				t.Fatal(err)
			}
			c := netconf.Configurator{Root: uvm.Handle, DHCP: netconf.DHCPClient{Command: tt.command, Timeout: tt.timeout}}
			_, err = c.Apply(context.Background(), nic, pod.Handle, cfg)
			if !errors.Is(err, netconf.ErrDHCP) {
				t.Fatalf("Apply = %v, want ErrDHCP", err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("Apply = %v, want it caused by %v", err, tt.cause)
			}
			assertThreadsInProcessNetNS(t)
			if pod.Link(t, nic) != nil {
				t.Fatal("link left in the pod namespace")
			}
			after := uvm.Link(t, nic)
			if after == nil {
				t.Fatal("link not moved back to the root namespace")
			}
			if after.Attrs().MTU != before.Attrs().MTU || nettest.IsUp(after) != nettest.IsUp(before) {
				t.Errorf("link state not restored: MTU %d->%d, up %v->%v",
					before.Attrs().MTU, after.Attrs().MTU, nettest.IsUp(before), nettest.IsUp(after))
			}
		})
	}
}

// assertThreadsInProcessNetNS checks that no thread of the test process was
// left inside another network namespace by runInNetNS.
func assertThreadsInProcessNetNS(t *testing.T) {
	t.Helper()
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("list threads: %v", err)
	}
	for _, task := range tasks {
		got, err := os.Readlink(task)
		if err != nil {
			continue // the thread exited meanwhile
		}
		if got != want {
			t.Errorf("thread %s is in %s, the process in %s", task, got, want)
		}
	}
}
