package policy

import (
	"fmt"
	"path/filepath"
	"strings"
)

// mountKind is what a recorded mount is.
type mountKind int

const (
	mountRODevice mountKind = iota
	mountRWDevice
	mountOverlay
)

func (k mountKind) String() string {
	switch k {
	case mountRODevice:
		return "read-only device"
	case mountRWDevice:
		return "read-write device"
	default:
		return "overlay"
	}
}

// mountRecord is one mount the guest made in confidential mode.
type mountRecord struct {
	path      string
	kind      mountKind
	source    string // the device ("scsi 0:1:0"), or the path for an overlay
	encrypted bool
	// users counts the overlays built on this mount (as a layer or their
	// scratch); a mount with users cannot be removed.
	users int
	// uses are the mounts an overlay is built on.
	uses []*mountRecord
}

// mountTable is the guest's own record of what it mounted, kept in
// confidential mode next to the policy's. It answers what the policy does
// not: whether a scratch lies on an encrypted disk, and whether a device
// is still under an overlay when the host asks to remove it. The reference
// keeps the same record (hcsshim internal/guest/runtime/hcsv2/uvm_state.go,
// hostMounts). Callers serialize access (guardedStorage.mu).
type mountTable struct {
	byPath map[string]*mountRecord
}

func newMountTable() *mountTable {
	return &mountTable{byPath: map[string]*mountRecord{}}
}

// add records a device mounted at path.
func (t *mountTable) add(path string, kind mountKind, source string, encrypted bool) (*mountRecord, error) {
	path = filepath.Clean(path)
	if old, ok := t.byPath[path]; ok {
		return nil, fmt.Errorf("%w: a %s is already mounted at %s", ErrMountState, old.kind, path)
	}
	r := &mountRecord{path: path, kind: kind, source: source, encrypted: encrypted}
	t.byPath[path] = r
	return r, nil
}

// remove forgets the mount at path, which must be of kind and from source
// and have no users; an unrecorded path is not an error (the policy
// decides about it). The returned undo puts the record back.
func (t *mountTable) remove(path string, kind mountKind, source string) (undo func(), err error) {
	path = filepath.Clean(path)
	r, ok := t.byPath[path]
	if !ok {
		return func() {}, nil
	}
	switch {
	case r.kind != kind:
		return nil, fmt.Errorf("%w: %s is a %s, not a %s", ErrMountState, path, r.kind, kind)
	case r.source != source:
		return nil, fmt.Errorf("%w: %s is mounted from %s, not %s", ErrMountState, path, r.source, source)
	case r.users > 0:
		return nil, fmt.Errorf("%w: %s is still used by %d overlay(s)", ErrMountState, path, r.users)
	}
	delete(t.byPath, path)
	for _, u := range r.uses {
		u.users--
	}
	return func() {
		t.byPath[path] = r
		for _, u := range r.uses {
			u.users++
		}
	}, nil
}

// addOverlay records an overlay at path over layers with scratch (may be
// empty), counting a use of each recorded mount they lie on.
func (t *mountTable) addOverlay(path string, layers []string, scratch string) error {
	r, err := t.add(path, mountOverlay, filepath.Clean(path), false)
	if err != nil {
		return err
	}
	under := append([]string(nil), layers...)
	if scratch != "" {
		under = append(under, scratch)
	}
	for _, p := range under {
		if m := t.containing(p); m != nil && m != r {
			m.users++
			r.uses = append(r.uses, m)
		}
	}
	return nil
}

// containing returns the innermost recorded mount that path lies in.
func (t *mountTable) containing(path string) *mountRecord {
	path = filepath.Clean(path)
	var best *mountRecord
	for mp, r := range t.byPath {
		if path != mp && !strings.HasPrefix(path, mp+"/") && mp != "/" {
			continue
		}
		if best == nil || len(mp) > len(best.path) {
			best = r
		}
	}
	return best
}

// encrypted reports whether path lies on a read-write device mounted
// encrypted.
func (t *mountTable) encrypted(path string) bool {
	r := t.containing(path)
	return r != nil && r.kind == mountRWDevice && r.encrypted
}
