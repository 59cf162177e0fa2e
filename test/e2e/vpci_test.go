package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/vpci/vpcitest"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

const vpciDevice = "9E8D7C6B-5A49-4382-A1B0-C9D8E7F6A5B4"

// TestVPCIDevice assigns a (fake) PCI device over VMBus as a host does:
// VPCIDevice Add waits until the device shows up in sysfs (it is hot-added
// while the request waits), then a workload whose windows.devices names it
// gets its device node and may open it. The sysfs and /dev trees are fakes
// passed with -sysfs-root and -dev-root; the node is a real character
// device (1:9, urandom's numbers). GPUs stay refused.
func TestVPCIDevice(t *testing.T) {
	tree := t.TempDir()
	sys, dev := filepath.Join(tree, "sys"), filepath.Join(tree, "dev")
	e := newEnvOpts(t, gcstest.Options{Args: []string{"-sysfs-root", sys, "-dev-root", dev}})

	added := make(chan error, 1)
	go func() {
		added <- e.c.Modify(ctxT(t, 60e9), prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceVPCIDevice, &prot.LCOWMappedVPCIDevice{VMBusGUID: vpciDevice})
	}()
	// The hot-add completes while the request waits (or before it is read:
	// either way the Add must succeed once the device is there).
	if _, err := vpcitest.AddDevice(sys, dev, vpciDevice, "3c2d:00", vpcitest.Node{Name: "accel0", Type: 'c', Major: 1, Minor: 9}); err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatalf("VPCIDevice Add: %v", err)
	}

	t.Run("Refusals", func(t *testing.T) {
		tests := []struct {
			name, requestType string
			settings          any
			text              string
		}{
			{"id that is not a GUID", prot.RequestTypeAdd, &prot.LCOWMappedVPCIDevice{VMBusGUID: "../../../etc"}, "invalid VMBus instance id"},
			{"Remove, which the reference does not serve either", prot.RequestTypeRemove, &prot.LCOWMappedVPCIDevice{VMBusGUID: vpciDevice}, "not supported"},
		}
		for _, tc := range tests {
			err := e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, tc.requestType, prot.ResourceVPCIDevice, tc.settings)
			mustFailWith(t, tc.name, err, prot.HrFail, tc.text)
		}
	})

	sid := newID(t)
	s := e.sandboxSpec(sid, "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b", "vpci-0")
	s.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
	e.create(sid, s)
	spid := e.startInit(sid)

	t.Run("WorkloadGetsTheDevice", func(t *testing.T) {
		e := e.podForTest(t)
		wid := newID(t)
		w := e.workloadSpec(sid, "app", spid, "sh", "-c", "head -c 8 /dev/accel0 | wc -c")
		w.Windows = &specs.Windows{Devices: []specs.WindowsDevice{{ID: strings.ToLower(vpciDevice), IDType: "vpci-instance-id"}}}
		e.create(wid, w)
		p := e.exec(wid, nil, false, true, false)
		if out := strings.TrimSpace(readAll(t, p.stdio, hostclient.StdOut)); out != "8" {
			t.Fatalf("reading the assigned device in the workload: %q", out)
		}
		if code := e.wait(wid, p.pid); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})

	t.Run("GPURefused", func(t *testing.T) {
		e := e.podForTest(t)
		wid := newID(t)
		w := e.workloadSpec(sid, "gpu", spid, "true")
		w.Windows = &specs.Windows{Devices: []specs.WindowsDevice{{ID: vpciDevice, IDType: "gpu"}}}
		mustFailWith(t, "GPU workload", e.tryCreate(wid, w), prot.HrFail, "GPU driver installation and NVIDIA hooks are not implemented")
		e.assertNoTrace(t, wid, sid)
	})
}
