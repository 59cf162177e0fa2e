package policy

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// This file holds the checks the guest makes in confidential mode besides
// asking the policy, as the reference guest does
// (hcsshim internal/guest/runtime/hcsv2/uvm.go): container ids that are
// safe in paths, the path layout of container roots and scratch
// directories, mount options, Plan 9 share names, the existence of a path
// the host asks to unmount, and the inconsistent-state latch.

// containerRootPrefix is where the confidential host puts every container's
// bundle (/run/gcs/c/<id>, hcsshim internal/guestpath).
const containerRootPrefix = "/run/gcs/c"

// ValidContainerID checks a container or sandbox id in confidential mode:
// 64 hexadecimal digits, or the null GUID that names the utility VM. Any
// other id could reach outside the directories it names.
func ValidContainerID(id string) error {
	if id == prot.NullContainerID || isHex64(id) {
		return nil
	}
	return fmt.Errorf("%w: %q (must be 64 hexadecimal digits)", ErrInvalidID, id)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// diskOptions checks a MappedVirtualDisk Add: the only mount option allowed
// is "ro", present exactly when the disk is read-only, and a read-only
// layer must be ext4 (the only file system a verity layer carries).
func diskOptions(s *prot.LCOWMappedVirtualDisk) error {
	want := []string{}
	if s.ReadOnly {
		want = []string{"ro"}
	}
	if !slices.Equal(s.Options, want) {
		return fmt.Errorf("%w: mounting scsi device controller %d lun %d onto %s with mount options %q: expected %q",
			ErrConfidentialRequest, s.Controller, s.Lun, s.MountPath, strings.Join(s.Options, ","), strings.Join(want, ","))
	}
	if s.ReadOnly && !s.BlockDev && s.Filesystem != "" && s.Filesystem != "ext4" {
		return fmt.Errorf("%w: read-only scsi mounts must be ext4, not %q", ErrConfidentialRequest, s.Filesystem)
	}
	return nil
}

// shareName checks a Plan 9 share name: digits only.
func shareName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty plan9 share name", ErrConfidentialRequest)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return fmt.Errorf("%w: plan9 share name %q must be digits only", ErrConfidentialRequest, name)
		}
	}
	return nil
}

// layersLayout checks a CombinedLayers Add: the container id is safe, its
// root is /run/gcs/c/<id>/rootfs and its scratch (if any) is
// /run/gcs/c/<sandbox id>/scratch/<id>.
func layersLayout(s *prot.LCOWCombinedLayers) error {
	if err := ValidContainerID(s.ContainerID); err != nil {
		return err
	}
	if root := path.Join(containerRootPrefix, s.ContainerID, "rootfs"); s.ContainerRootPath != root {
		return fmt.Errorf("%w: combined layers target %q does not match expected path %q", ErrConfidentialRequest, s.ContainerRootPath, root)
	}
	if s.ScratchPath == "" {
		return nil
	}
	rest, ok := strings.CutPrefix(s.ScratchPath, containerRootPrefix+"/")
	sandbox, tail, _ := strings.Cut(rest, "/")
	if !ok || !isHex64(sandbox) || tail != "scratch/"+s.ContainerID {
		return fmt.Errorf("%w: scratch path %q must be %s/<64 hex>/scratch/%s", ErrConfidentialRequest, s.ScratchPath, containerRootPrefix, s.ContainerID)
	}
	return nil
}

// mustExist refuses an unmount of a path that does not exist. It runs only
// after the policy allowed the request, so that a host cannot learn
// whether an arbitrary path exists.
func mustExist(what, p string) error {
	if _, err := os.Lstat(p); err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("%w: unmounting %s at %s failed: directory does not exist", ErrConfidentialRequest, what, p)
		}
		return fmt.Errorf("unmounting %s at %s: %w", what, p, err)
	}
	return nil
}

// CheckConsistent returns an error once an unmount failed in confidential
// mode: from then on the guest's mounts may differ from what the policy
// believes, so mounts, unmounts and container creation and deletion are
// refused for the rest of the utility VM's life.
func (e *Enforcer) CheckConsistent() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current().EncodedSecurityPolicy() == "" || e.inconsistent == nil {
		return nil
	}
	return prot.NewError(prot.HrFail, fmt.Errorf("%w: %w", ErrInconsistent, e.inconsistent))
}

// markInconsistent sets the latch (confidential mode only); the first
// cause is kept.
func (e *Enforcer) markInconsistent(cause error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current().EncodedSecurityPolicy() == "" || e.inconsistent != nil {
		return
	}
	e.inconsistent = cause
	e.log.WithError(cause).Error("utility VM marked inconsistent: mounts, unmounts, container creation and deletion are refused from now on")
}
