package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

func TestMountTable(t *testing.T) {
	tb := newMountTable()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := tb.add("/run/mounts/scsi/m1", mountRODevice, "scsi 0:1:0", false)
	must(err)
	_, err = tb.add("/run/mounts/scsi/m2/", mountRWDevice, "scsi 0:2:0", true)
	must(err)
	if _, err := tb.add("/run/mounts/scsi/m1", mountRWDevice, "scsi 0:3:0", false); !errors.Is(err, ErrMountState) {
		t.Fatalf("second mount at the same path: %v", err)
	}
	must(tb.addOverlay("/run/gcs/c/x/rootfs", []string{"/run/mounts/scsi/m1"}, "/run/mounts/scsi/m2/scratch/x"))

	for _, tc := range []struct {
		name, path string
		kind       mountKind
		source     string
		want       string
	}{
		{"layer under an overlay", "/run/mounts/scsi/m1", mountRODevice, "scsi 0:1:0", "still used by 1 overlay"},
		{"scratch disk under an overlay", "/run/mounts/scsi/m2", mountRWDevice, "scsi 0:2:0", "still used by 1 overlay"},
		{"wrong kind", "/run/mounts/scsi/m1", mountRWDevice, "scsi 0:1:0", "is a read-only device, not a read-write device"},
		{"wrong device", "/run/mounts/scsi/m1", mountRODevice, "scsi 0:9:0", "is mounted from scsi 0:1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tb.remove(tc.path, tc.kind, tc.source)
			if !errors.Is(err, ErrMountState) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("remove: %v, want %q", err, tc.want)
			}
		})
	}
	if !tb.encrypted("/run/mounts/scsi/m2/scratch/x") || tb.encrypted("/run/mounts/scsi/m1/a") || tb.encrypted("/run/mounts/scsi/m20") {
		t.Fatal("encrypted: wrong answer for a path on, off or beside the encrypted disk")
	}

	// Removing the overlay frees its devices; undo takes them again.
	undo, err := tb.remove("/run/gcs/c/x/rootfs", mountOverlay, "/run/gcs/c/x/rootfs")
	must(err)
	undo()
	if _, err := tb.remove("/run/mounts/scsi/m1", mountRODevice, "scsi 0:1:0"); !errors.Is(err, ErrMountState) {
		t.Fatalf("layer removed after the overlay's removal was undone: %v", err)
	}
	_, err = tb.remove("/run/gcs/c/x/rootfs", mountOverlay, "/run/gcs/c/x/rootfs")
	must(err)
	_, err = tb.remove("/run/mounts/scsi/m1", mountRODevice, "scsi 0:1:0")
	must(err)
	_, err = tb.remove("/run/mounts/scsi/m2", mountRWDevice, "scsi 0:2:0")
	must(err)
	if _, err := tb.remove("/run/mounts/scsi/m7", mountRODevice, "scsi 0:7:0"); err != nil {
		t.Fatalf("an unrecorded path is the policy's business: %v", err)
	}
	if len(tb.byPath) != 0 {
		t.Fatalf("records left: %v", tb.byPath)
	}
}

func TestConfidentialValidators(t *testing.T) {
	id := strings.Repeat("ab", 32)
	sid := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"hex id", ValidContainerID(id), true},
		{"upper-case hex id", ValidContainerID(strings.ToUpper(id)), true},
		{"null GUID", ValidContainerID(prot.NullContainerID), true},
		{"short id", ValidContainerID("abc"), false},
		{"id with a slash", ValidContainerID(strings.Repeat("a", 31) + "/" + strings.Repeat("a", 32)), false},
		{"read-only disk with ro", diskOptions(&prot.LCOWMappedVirtualDisk{ReadOnly: true, Options: []string{"ro"}}), true},
		{"read-only disk without options", diskOptions(&prot.LCOWMappedVirtualDisk{ReadOnly: true}), false},
		{"read-write disk with ro", diskOptions(&prot.LCOWMappedVirtualDisk{Options: []string{"ro"}}), false},
		{"read-write disk", diskOptions(&prot.LCOWMappedVirtualDisk{Filesystem: "xfs"}), true},
		{"read-write disk with another option", diskOptions(&prot.LCOWMappedVirtualDisk{Options: []string{"rshared"}}), false},
		{"read-only xfs layer", diskOptions(&prot.LCOWMappedVirtualDisk{ReadOnly: true, Options: []string{"ro"}, Filesystem: "xfs"}), false},
		{"numeric share", shareName("42"), true},
		{"named share", shareName("share"), false},
		{"empty share", shareName(""), false},
		{"layout", layersLayout(&prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: "/run/gcs/c/" + id + "/rootfs", ScratchPath: "/run/gcs/c/" + sid + "/scratch/" + id}), true},
		{"layout without scratch", layersLayout(&prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: "/run/gcs/c/" + id + "/rootfs"}), true},
		{"root elsewhere", layersLayout(&prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: "/run/gcs/c/" + sid + "/rootfs"}), false},
		{"scratch of another container", layersLayout(&prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: "/run/gcs/c/" + id + "/rootfs", ScratchPath: "/run/gcs/c/" + sid + "/scratch/" + sid}), false},
		{"scratch escaping", layersLayout(&prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: "/run/gcs/c/" + id + "/rootfs", ScratchPath: "/run/gcs/c/../../etc/scratch/" + id}), false},
		{"bad id in layers", layersLayout(&prot.LCOWCombinedLayers{ContainerID: "../x", ContainerRootPath: "/run/gcs/c/../x/rootfs"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ok != (tc.err == nil) {
				t.Fatalf("err = %v, want ok=%v", tc.err, tc.ok)
			}
			if tc.err != nil && !errors.Is(tc.err, ErrConfidentialRequest) && !errors.Is(tc.err, ErrInvalidID) {
				t.Fatalf("%v is not a confidential-mode refusal", tc.err)
			}
		})
	}
}
