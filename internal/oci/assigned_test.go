package oci

import (
	"context"
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeAssigned stands for internal/vpci: it knows one device.
type fakeAssigned map[string][]specs.LinuxDevice

var errNoSuchDevice = errors.New("no such device")

func (f fakeAssigned) DeviceNodes(_ context.Context, id string) ([]specs.LinuxDevice, error) {
	n, ok := f[id]
	if !ok {
		return nil, errNoSuchDevice
	}
	return n, nil
}

func TestSetupWorkloadAssignedDevices(t *testing.T) {
	ctx := context.Background()
	uid := uint32(0)
	assigned := fakeAssigned{"dev-a": {{Path: "/dev/accel0", Type: "c", Major: 1, Minor: 9, UID: &uid, GID: &uid}}}
	tests := []struct {
		name     string
		devices  []specs.WindowsDevice
		assigned AssignedDevices
		wantErr  error
		wantDev  bool
	}{
		{name: "vpci-instance-id", devices: []specs.WindowsDevice{{ID: "dev-a", IDType: "vpci-instance-id"}}, assigned: assigned, wantDev: true},
		{name: "legacy vpci", devices: []specs.WindowsDevice{{ID: "dev-a", IDType: "vpci"}}, assigned: assigned, wantDev: true},
		{name: "device not found", devices: []specs.WindowsDevice{{ID: "dev-b", IDType: "vpci-instance-id"}}, assigned: assigned, wantErr: errNoSuchDevice},
		{name: "no lookup", devices: []specs.WindowsDevice{{ID: "dev-a", IDType: "vpci-instance-id"}}, wantErr: ErrUnsupportedDevice},
		{name: "gpu stays refused", devices: []specs.WindowsDevice{{ID: "dev-a", IDType: "vpci-instance-id"}, {ID: "g", IDType: "gpu"}}, assigned: assigned, wantErr: ErrUnsupportedDevice},
		{name: "unknown type ignored", devices: []specs.WindowsDevice{{ID: "x", IDType: "class"}}, assigned: assigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			devRoot, _, _ := testDevRoot(t)
			spec := newSpec(makeRootfs(t, testPasswd, testGroup), nil)
			spec.Windows = &specs.Windows{Devices: tc.devices}
			err := SetupWorkload(ctx, "w1", "s1", newPodRoot(t), spec, Options{DevRoot: devRoot, Assigned: tc.assigned})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetupWorkload = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			found := false
			for _, d := range spec.Linux.Devices {
				found = found || (d.Path == "/dev/accel0" && d.Major == 1 && d.Minor == 9)
			}
			allowed := false
			for _, r := range spec.Linux.Resources.Devices {
				allowed = allowed || (r.Allow && r.Type == "c" && r.Major != nil && *r.Major == 1 && r.Minor != nil && *r.Minor == 9 && r.Access == "rwm")
			}
			if found != tc.wantDev || allowed != tc.wantDev {
				t.Fatalf("device added %t, allowed %t; want %t (%+v)", found, allowed, tc.wantDev, spec.Linux)
			}
			if spec.Windows != nil {
				t.Fatal("windows section kept")
			}
		})
	}
}
