package uvm

import (
	"path/filepath"
	"strings"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// Guest directories the host may name (internal/guestpath upstream).
const (
	// BundleRootV1 holds shim v1 bundles: /run/gcs/c/<id>.
	BundleRootV1 = "/run/gcs/c"
	// BundleRootV2 holds shim v2 bundles: /run/gcs/pods/<pod>/<ctr>.
	BundleRootV2 = "/run/gcs/pods"
	// ScsiMountRoot holds SCSI disks mounted without an explicit path.
	ScsiMountRoot = "/run/mounts/scsi"
)

// bundleRoots are where bundles may live; scratchRoots where scratch
// directories may live. Nothing outside them is ever created or removed
// on the host's behalf.
var (
	bundleRoots  = []string{BundleRootV1, BundleRootV2}
	scratchRoots = []string{BundleRootV1, BundleRootV2, ScsiMountRoot}
)

// checkUnder verifies that p is an absolute, clean path strictly below one
// of roots.
func checkUnder(what, p string, roots []string) error {
	if p == "" {
		return prot.Errorf(prot.HrFail, "%s is empty", what)
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != strings.TrimSuffix(p, "/") || strings.Contains(p, "\x00") {
		return prot.Errorf(prot.HrFail, "%s %q must be an absolute, clean path", what, p)
	}
	for _, r := range roots {
		if strings.HasPrefix(p, r+"/") && len(p) > len(r)+1 {
			return nil
		}
	}
	return prot.Errorf(prot.HrFail, "%s %q is not under %s", what, p, strings.Join(roots, " or "))
}

func cgroupJoin(prefix, p string) string {
	if prefix == "" {
		return p
	}
	return filepath.Join(prefix, p)
}
