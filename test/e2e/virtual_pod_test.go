package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

const (
	annVirtualPodID = "io.microsoft.cri.virtual-pod-id"
	virtualPodNS    = "7c2e4a10-5b3d-4f6e-9a8b-1c2d3e4f5a6b"
	virtualPodNIC   = "d4e5f6a7-0000-4000-8000-00155d0a0b10"
)

// TestVirtualPod drives a virtual pod as the reference serves it
// (upstream internal/guest/runtime/hcsv2/sandbox_container.go): the
// sandbox (id = virtual-pod-id) is created while its network namespace
// has no adapter and no record; the record is created for it and the NIC
// announced afterwards lands in the running sandbox's namespace. Its
// workload mounts sandbox:// and sandbox-tmp:// sources: the pod root's
// sandboxMounts/ is shared, so a mount the UVM makes below it after the
// workload started shows up inside the workload, and sandboxTmpfsMounts/
// is a tmpfs of its own (the workload's mount is rooted in it).
func TestVirtualPod(t *testing.T) {
	n := newNetEnv(t)
	e := n.env
	vid, wid := newID(t), newID(t)

	s := e.sandboxSpec(vid, virtualPodNS, "vpod-0")
	s.Annotations[annVirtualPodID] = vid
	e.create(vid, s)
	spid := e.startInit(vid)
	root := filepath.Join(filepath.Dir(bundleOf(vid)), "virtual-pods", vid)

	t.Run("AdapterArrivesLater", func(t *testing.T) {
		e := e.podForTest(t)
		n.addNIC(t, virtualPodNIC, "eth0", 0)
		adp := &prot.LCOWNetworkAdapter{
			NamespaceID: strings.ToUpper(virtualPodNS), ID: virtualPodNIC, EncapOverhead: 50,
			IPConfigs: []prot.IPConfig{{IPAddress: "10.89.0.5", PrefixLength: 24}},
		}
		if err := e.podModify(prot.RequestTypeAdd, prot.ResourceNetwork, adp); err != nil {
			t.Fatalf("Network Add after the virtual pod's sandbox runs: %v", err)
		}
		if _, ok := linksIn(t, n.gcsPid)["eth0"]; ok {
			t.Fatal("eth0 stayed in the UVM namespace")
		}
		mustContain(t, e.podMustSh(vid, "/bin/busybox ip -o -4 addr show dev eth0"), "inet 10.89.0.5/24")
	})

	w := e.workloadSpec(vid, "app", spid, "sleep", "1000000")
	w.Annotations[annVirtualPodID] = vid
	w.Mounts = append(w.Mounts,
		specs.Mount{Destination: "/shared", Type: "bind", Source: "sandbox://shared", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/scratch", Type: "bind", Source: "sandbox-tmp://data", Options: []string{"rbind", "rw"}},
	)
	e.create(wid, w)
	e.startInit(wid)

	t.Run("SandboxMountsPropagate", func(t *testing.T) {
		e := e.podForTest(t)
		late := filepath.Join(root, "sandboxMounts", "shared", "late")
		n.inGCSNs(t, "mkdir", "-p", late)
		n.inGCSNs(t, "mount", "-t", "tmpfs", "-o", "size=64k", "late", late)
		n.inGCSNs(t, "sh", "-c", "echo from-the-uvm > "+late+"/marker")
		if out := e.podMustSh(wid, "cat /shared/late/marker"); out != "from-the-uvm\n" {
			t.Fatalf("a mount made below sandboxMounts after the workload started is not visible in it: %q", out)
		}
	})

	t.Run("SandboxTmpIsTmpfs", func(t *testing.T) {
		e := e.podForTest(t)
		// Field 4 of mountinfo is the mount's root within its file system:
		// "/data" when sandboxTmpfsMounts/ is a tmpfs of its own.
		out := e.podMustSh(wid, `awk '$5 == "/scratch" {print $4, $9}' /proc/self/mountinfo`)
		if out != "/data tmpfs\n" {
			t.Fatalf("/scratch in the workload: %q, want \"/data tmpfs\"", out)
		}
		p, err := e.g.Root(filepath.Join(root, "logs"))
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o777 {
			t.Fatalf("pod logs directory: %v, %v; want mode 0777", fi, err)
		}
	})
}

// inGCSNs runs a command in the gcs's mount namespace (its /run, the pod
// roots), as the UVM itself would.
func (n *netEnv) inGCSNs(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"-t", strconv.Itoa(n.gcsPid), "-m", "--"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter -t %d -m %s: %v: %s", n.gcsPid, strings.Join(args, " "), err, out)
	}
	return string(out)
}
