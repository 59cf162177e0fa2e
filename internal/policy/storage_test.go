//go:build rego

package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// stubStorage records the requests that reach it; failPath fails one.
type stubStorage struct {
	mu       sync.Mutex
	mounted  map[string]bool
	failPath string
	// failRemove fails the removal of that path.
	failRemove string
}

var errStub = errors.New("stub mount failed")

func (s *stubStorage) add(p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == s.failPath {
		return errStub
	}
	s.mounted[p] = true
	return nil
}

func (s *stubStorage) remove(p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == s.failRemove {
		return errStub
	}
	delete(s.mounted, p)
	return nil
}

func (s *stubStorage) AddMappedVirtualDisk(_ context.Context, d *prot.LCOWMappedVirtualDisk) error {
	return s.add(d.MountPath)
}
func (s *stubStorage) RemoveMappedVirtualDisk(_ context.Context, d *prot.LCOWMappedVirtualDisk) error {
	return s.remove(d.MountPath)
}
func (s *stubStorage) RemoveSCSIDevice(context.Context, *prot.SCSIDevice) error { return nil }
func (s *stubStorage) AddVPMem(_ context.Context, d *prot.LCOWMappedVPMemDevice) error {
	return s.add(d.MountPath)
}
func (s *stubStorage) RemoveVPMem(_ context.Context, d *prot.LCOWMappedVPMemDevice) error {
	return s.remove(d.MountPath)
}
func (s *stubStorage) AddMappedDirectory(_ context.Context, d *prot.LCOWMappedDirectory) error {
	return s.add(d.MountPath)
}
func (s *stubStorage) RemoveMappedDirectory(_ context.Context, d *prot.LCOWMappedDirectory) error {
	return s.remove(d.MountPath)
}
func (s *stubStorage) AddCombinedLayers(_ context.Context, d *prot.LCOWCombinedLayers) error {
	return s.add(d.ContainerRootPath)
}
func (s *stubStorage) RemoveCombinedLayers(_ context.Context, d *prot.LCOWCombinedLayers) error {
	return s.remove(d.ContainerRootPath)
}

// TestGuardStorage: under an allow-all Rego policy concurrent storage
// requests are serialized (the enforcer refuses concurrent transactions);
// a mount the storage fails is an error of its own and the target can be
// mounted again; the closed door keeps requests from the storage
// altogether. (The Rego records themselves are covered through the wire by
// TestPolicyPinnedContainer.)
func TestGuardStorage(t *testing.T) {
	ctx := context.Background()
	st := &stubStorage{mounted: map[string]bool{}, failPath: "/run/mounts/m-fail"}
	e := OpenDoor()
	if err := e.SetPolicy(ctx, prot.ConfidentialOptions{EnforcerType: EnforcerRego, EncodedSecurityPolicy: regoPolicy(t, true)}); err != nil {
		t.Fatal(err)
	}
	g := e.GuardStorage(st, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: fmt.Sprintf("/run/mounts/m%d", i), ShareName: "1"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent mount: %v", err)
		}
	}
	if err := g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: st.failPath, ShareName: "1"}); !errors.Is(err, errStub) {
		t.Fatalf("failing mount: %v", err)
	}
	st.failPath = ""
	if err := g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m-fail", ShareName: "1"}); err != nil {
		t.Fatalf("mount after a rolled-back one: %v", err)
	}

	deny, err := New(Config{Stance: StanceDeny})
	if err != nil {
		t.Fatal(err)
	}
	closed := &stubStorage{mounted: map[string]bool{}}
	err = deny.GuardStorage(closed, nil).AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs"})
	if hresultOf(err) != prot.HrFail || len(closed.mounted) != 0 {
		t.Fatalf("closed door: %v, storage saw %v", err, closed.mounted)
	}
}

// TestConfidentialStorage: under a policy that allows everything, the
// confidential-mode checks still refuse what the reference refuses, keep
// devices under an overlay mounted, and after a failed unmount refuse
// every further mount and unmount.
func TestConfidentialStorage(t *testing.T) {
	ctx := context.Background()
	st := &stubStorage{mounted: map[string]bool{}}
	e := OpenDoor()
	g := e.GuardStorage(st, func(rootfs string) bool { return rootfs == "/run/gcs/c/"+strings.Repeat("1", 64)+"/rootfs" })

	// Open door: no confidential checks.
	dir := t.TempDir()
	layer := &prot.LCOWMappedVirtualDisk{MountPath: filepath.Join(dir, "m1"), Lun: 1, ReadOnly: true}
	if err := g.AddMappedVirtualDisk(ctx, layer); err != nil {
		t.Fatalf("open door, layer without options: %v", err)
	}
	if err := g.RemoveMappedVirtualDisk(ctx, layer); err != nil {
		t.Fatal(err)
	}

	if err := e.SetPolicy(ctx, prot.ConfidentialOptions{EnforcerType: EnforcerRego, EncodedSecurityPolicy: regoPolicy(t, true)}); err != nil {
		t.Fatal(err)
	}
	refusedWith := func(what string, err error, want error, text string) {
		t.Helper()
		if !errors.Is(err, want) || hresultOf(err) != prot.HrFail || !strings.Contains(err.Error(), text) {
			t.Fatalf("%s: %v, want %v with %q", what, err, want, text)
		}
	}
	refusedWith("layer without the ro option", g.AddMappedVirtualDisk(ctx, layer), ErrConfidentialRequest, `expected "ro"`)
	if len(st.mounted) != 0 {
		t.Fatalf("a refused mount reached the storage: %v", st.mounted)
	}
	layer.Options = []string{"ro"}
	if err := os.Mkdir(layer.MountPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := g.AddMappedVirtualDisk(ctx, layer); err != nil {
		t.Fatalf("layer: %v", err)
	}
	refusedWith("plan9 share by name", g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m3", ShareName: "share"}), ErrConfidentialRequest, "digits only")
	refusedWith("VPMem multi-mapping", g.AddVPMem(ctx, &prot.LCOWMappedVPMemDevice{MountPath: "/run/layers/p0", MappingInfo: &prot.LCOWVPMemMappingInfo{}}), ErrConfidentialRequest, "multi-mapped")

	id := strings.Repeat("1", 64)
	other := strings.Repeat("2", 64)
	refusedWith("overlay root elsewhere", g.AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: "/run/gcs/c/" + other + "/rootfs"}), ErrConfidentialRequest, "does not match expected path")
	refusedWith("overlay of a bad id", g.AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerID: "x", ContainerRootPath: "/run/gcs/c/x/rootfs"}), ErrInvalidID, "64 hexadecimal")
	for _, c := range []string{id, other} {
		cl := &prot.LCOWCombinedLayers{ContainerID: c, ContainerRootPath: "/run/gcs/c/" + c + "/rootfs", Layers: []prot.Layer{{Path: layer.MountPath}}}
		if err := g.AddCombinedLayers(ctx, cl); err != nil {
			t.Fatalf("overlay of %s: %v", c, err)
		}
	}
	refusedWith("layer under two overlays", g.RemoveMappedVirtualDisk(ctx, layer), ErrMountState, "still used by 2 overlay(s)")
	refusedWith("overlay of a running container", g.RemoveCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/" + id + "/rootfs"}), ErrConfidentialRequest, "in use by a running container")
	if err := g.RemoveCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/" + other + "/rootfs"}); err != nil {
		t.Fatalf("overlay of a stopped container: %v", err)
	}
	refusedWith("layer under one overlay", g.RemoveMappedVirtualDisk(ctx, layer), ErrMountState, "still used by 1 overlay(s)")

	// Unmounting a path that does not exist is refused (after the policy
	// allowed it) and is not a failure of the guest.
	gone := &prot.LCOWMappedVirtualDisk{MountPath: filepath.Join(dir, "m2"), Lun: 2, ReadOnly: true, Options: []string{"ro"}}
	if err := g.AddMappedVirtualDisk(ctx, gone); err != nil {
		t.Fatal(err)
	}
	refusedWith("unmount of a missing path", g.RemoveMappedVirtualDisk(ctx, gone), ErrConfidentialRequest, "directory does not exist")
	if err := e.CheckConsistent(); err != nil {
		t.Fatalf("a refused unmount set the latch: %v", err)
	}

	// A failed unmount sets the latch: nothing is mounted or unmounted any
	// more.
	if err := os.Mkdir(gone.MountPath, 0o700); err != nil {
		t.Fatal(err)
	}
	st.failRemove = gone.MountPath
	if err := g.RemoveMappedVirtualDisk(ctx, gone); !errors.Is(err, errStub) {
		t.Fatalf("failing unmount: %v", err)
	}
	refusedWith("CheckConsistent", e.CheckConsistent(), ErrInconsistent, "stub mount failed")
	refusedWith("mount after the latch", g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m4", ShareName: "4"}), ErrInconsistent, "disabled")
	refusedWith("unmount after the latch", g.RemoveCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/" + id + "/rootfs"}), ErrInconsistent, "disabled")
}
