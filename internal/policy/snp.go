package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/Microsoft/hcsshim/pkg/amdsevsnp"
)

// SNP is the AMD SEV-SNP hardware boundary: whether the guest device exists
// and the HOST_DATA of a fresh attestation report. Tests give a fake.
type SNP interface {
	// Present reports whether the SNP guest device exists.
	Present() (bool, error)
	// HostData fetches an attestation report and returns its HOST_DATA.
	HostData() ([]byte, error)
}

// snpDevices are the guest device names of the 5.x and 6.x kernel drivers.
var snpDevices = []string{"sev-guest", "sev"}

// DeviceSNP is the real SNP boundary. DevRoot stands for /dev when looking
// for the device; the report itself is fetched by pkg/amdsevsnp, which opens
// the device under /dev.
type DeviceSNP struct {
	DevRoot string
}

// Present implements SNP.
func (d DeviceSNP) Present() (bool, error) {
	root := d.DevRoot
	if root == "" {
		root = "/dev"
	}
	for _, name := range snpDevices {
		_, err := os.Stat(filepath.Join(root, name))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("SNP device %s: %w", name, err)
		}
	}
	return false, nil
}

// HostData implements SNP.
func (DeviceSNP) HostData() ([]byte, error) {
	r, err := amdsevsnp.FetchParsedSNPReport(nil)
	if err != nil {
		return nil, fmt.Errorf("fetch SNP report: %w", err)
	}
	return r.HostData, nil
}
