package ifname

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const guid = "a1b2c3d4-0000-4000-8000-00155d0a0b0c"

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{guid, true},
		{"A1B2C3D4-0000-4000-8000-00155D0A0B0C", true},
		{"", false},
		{"a1b2c3d4", false},
		{"../../../../../../etc/passwd-0000-00000", false},
		{"a1b2c3d4-0000-4000-8000-00155d0a0b0", false},
		{"a1b2c3d4-0000-4000-8000-00155d0a0b0cc", false},
		{"a1b2c3d4x0000-4000-8000-00155d0a0b0c", false},
		{"g1b2c3d4-0000-4000-8000-00155d0a0b0c", false},
		{"a1b2c3d4-0000-4000-8000-00155d0a/b0c", false},
		{"{a1b2c3d4-0000-4000-8000-00155d0a0b0c}", false},
	}
	for _, tt := range tests {
		err := ValidateID(tt.id)
		if tt.ok != (err == nil) {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", tt.id, err)
		}
	}
}

func TestInterfaceName(t *testing.T) {
	tests := []struct {
		name   string
		layout []string // directories to create under the sysfs root
		id     string
		vpci   bool
		want   string
		err    error
	}{
		{
			name:   "netvsc",
			layout: []string{"bus/vmbus/devices/" + guid + "/net/eth3"},
			id:     guid,
			want:   "eth3",
		},
		{
			name:   "netvsc upper-case id",
			layout: []string{"bus/vmbus/devices/" + guid + "/net/eth0"},
			id:     "A1B2C3D4-0000-4000-8000-00155D0A0B0C",
			want:   "eth0",
		},
		{
			name:   "vpci",
			layout: []string{"bus/vmbus/devices/" + guid + "/pci7a3c:00/7a3c:00:02.0/net/enP31292s1"},
			id:     guid,
			vpci:   true,
			want:   "enP31292s1",
		},
		{
			name:   "vpci without slot directory",
			layout: []string{"bus/vmbus/devices/" + guid + "/pci7a3c:00/other"},
			id:     guid,
			vpci:   true,
			err:    ErrNotFound,
		},
		{
			name:   "netvsc layout does not satisfy vpci",
			layout: []string{"bus/vmbus/devices/" + guid + "/net/eth0"},
			id:     guid,
			vpci:   true,
			err:    ErrNotFound,
		},
		{
			name: "missing device",
			id:   guid,
			err:  ErrNotFound,
		},
		{
			name:   "device without net directory",
			layout: []string{"bus/vmbus/devices/" + guid},
			id:     guid,
			err:    ErrNotFound,
		},
		{
			name:   "two interfaces",
			layout: []string{"bus/vmbus/devices/" + guid + "/net/eth0", "bus/vmbus/devices/" + guid + "/net/eth1"},
			id:     guid,
			err:    ErrAmbiguous,
		},
		{
			name:   "no interface",
			layout: []string{"bus/vmbus/devices/" + guid + "/net"},
			id:     guid,
			err:    ErrAmbiguous,
		},
		{
			name:   "id escaping the root",
			layout: []string{"net/eth0"},
			id:     "../../../../net",
			err:    ErrInvalidID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, l := range tt.layout {
				mkdirs(t, filepath.Join(root, l))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			got, err := New(root).InterfaceName(ctx, tt.id, tt.vpci)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("InterfaceName = %q, %v; want error %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("InterfaceName = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestInterfaceNameWaits checks that a device appearing while the lookup is
// already waiting is found.
func TestInterfaceNameWaits(t *testing.T) {
	root := t.TempDir()
	device := filepath.Join(root, "bus/vmbus/devices", guid)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	started := make(chan struct{})
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		close(started)
		name, err := New(root).InterfaceName(ctx, guid, false)
		done <- result{name, err}
	}()
	<-started
	// Build the tree in two steps, the way the kernel does.
	mkdirs(t, device)
	mkdirs(t, filepath.Join(device, "net", "eth7"))
	r := <-done
	if r.err != nil || r.name != "eth7" {
		t.Fatalf("InterfaceName = %q, %v; want eth7", r.name, r.err)
	}
}

// TestInterfaceNameDefaultDeadline checks that a context without a deadline
// still ends the wait.
func TestInterfaceNameDefaultDeadline(t *testing.T) {
	_, err := New(t.TempDir()).InterfaceName(context.Background(), guid, false)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("InterfaceName without deadline = %v, want ErrNotFound after the default deadline", err)
	}
}
