package vpci_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/vpci"
	"github.com/opengcs/opengcs/internal/vpci/vpcitest"
)

const (
	devID   = "5B9C2E7A-0D1F-4A3B-9C8D-7E6F5A4B3C2D"
	otherID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)

// tree is a fake sysfs and /dev with one assigned device (two nodes, one
// nested) and one node of an unrelated device.
func tree(t *testing.T) (devices.Roots, string) {
	t.Helper()
	d := t.TempDir()
	r := devices.Roots{Sys: filepath.Join(d, "sys"), Dev: filepath.Join(d, "dev")}
	pci, err := vpcitest.AddDevice(r.Sys, r.Dev, devID, "1a2b:00",
		vpcitest.Node{Name: "accel0", Type: 'c', Major: 1, Minor: 9},
		vpcitest.Node{Name: "accel/ctl", Type: 'c', Major: 1, Minor: 7},
	)
	if err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(r.Sys, "devices", "virtual", "mem", "random")
	if err := vpcitest.AddNode(r.Sys, r.Dev, unrelated, vpcitest.Node{Name: "random", Type: 'c', Major: 1, Minor: 8}); err != nil {
		t.Fatal(err)
	}
	return r, pci
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDeviceNodes(t *testing.T) {
	r, pci := tree(t)
	f := vpci.New(r)
	got, err := f.Wait(ctxT(t, 10*time.Second), devID)
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(got); err != nil || real != pci {
		t.Fatalf("Wait = %q (%q, %v); want the device at %q", got, real, err, pci)
	}
	nodes, err := f.DeviceNodes(ctxT(t, 10*time.Second), devID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int64{"/dev/accel/ctl": {1, 7}, "/dev/accel0": {1, 9}}
	if len(nodes) != len(want) {
		t.Fatalf("nodes %+v, want %v", nodes, want)
	}
	for _, n := range nodes {
		w, ok := want[n.Path]
		if !ok || n.Type != "c" || n.Major != w[0] || n.Minor != w[1] || n.UID == nil || n.GID == nil {
			t.Errorf("unexpected node %+v", n)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		edit    func(t *testing.T, r devices.Roots)
		wantErr error
	}{
		{name: "not a GUID", id: "../../etc", wantErr: vpci.ErrInvalidID},
		{name: "never appears", id: otherID, wantErr: devices.ErrTimeout},
		{name: "two buses", id: devID, wantErr: vpci.ErrAmbiguous, edit: func(t *testing.T, r devices.Roots) {
			if err := os.MkdirAll(filepath.Join(r.Sys, "devices", "vmbus", "5b9c2e7a-0d1f-4a3b-9c8d-7e6f5a4b3c2d", "pci1a2c:00"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "no device node", id: otherID, wantErr: vpci.ErrNoDeviceNodes, edit: func(t *testing.T, r devices.Roots) {
			if _, err := vpcitest.AddDevice(r.Sys, r.Dev, otherID, "2c3d:00"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := tree(t)
			if tc.edit != nil {
				tc.edit(t, r)
			}
			_, err := vpci.New(r).DeviceNodes(ctxT(t, 300*time.Millisecond), tc.id)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("DeviceNodes = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestWaitsForDevice adds the device while Wait is polling, as a hot-add
// that completes after the host's request arrived.
func TestWaitsForDevice(t *testing.T) {
	d := t.TempDir()
	r := devices.Roots{Sys: filepath.Join(d, "sys"), Dev: filepath.Join(d, "dev")}
	f := vpci.New(r)
	polled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(polled)
		_, err := f.DeviceNodes(ctxT(t, 30*time.Second), devID)
		done <- err
	}()
	<-polled
	if _, err := vpcitest.AddDevice(r.Sys, r.Dev, devID, "1a2b:00", vpcitest.Node{Name: "accel0", Type: 'c', Major: 1, Minor: 9}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("device added while waiting: %v", err)
	}
}
