//go:build rego

package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// stubStorage records the requests that reach it; failPath fails one.
type stubStorage struct {
	mu       sync.Mutex
	mounted  map[string]bool
	failPath string
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
	g := e.GuardStorage(st)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: fmt.Sprintf("/run/mounts/m%d", i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent mount: %v", err)
		}
	}
	if err := g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: st.failPath}); !errors.Is(err, errStub) {
		t.Fatalf("failing mount: %v", err)
	}
	st.failPath = ""
	if err := g.AddMappedDirectory(ctx, &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m-fail"}); err != nil {
		t.Fatalf("mount after a rolled-back one: %v", err)
	}

	deny, err := New(Config{Stance: StanceDeny})
	if err != nil {
		t.Fatal(err)
	}
	closed := &stubStorage{mounted: map[string]bool{}}
	err = deny.GuardStorage(closed).AddCombinedLayers(ctx, &prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/x/rootfs"})
	if hresultOf(err) != prot.HrFail || len(closed.mounted) != 0 {
		t.Fatalf("closed door: %v, storage saw %v", err, closed.mounted)
	}
}
