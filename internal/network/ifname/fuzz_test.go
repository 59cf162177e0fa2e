package ifname

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidateID: an accepted id names exactly one directory right below the
// devices directory, whatever the host sends.
func FuzzValidateID(f *testing.F) {
	f.Add("a1b2c3d4-0000-4000-8000-00155d0a0b0c")
	f.Add("../../../../../../../../../proc/self")
	f.Add("a1b2c3d4-0000-4000-8000-00155d0a/b0c")
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateID(id) != nil {
			return
		}
		base := "/sys/bus/vmbus/devices"
		p := filepath.Join(base, strings.ToLower(id))
		if filepath.Dir(p) != base || filepath.Base(p) != strings.ToLower(id) {
			t.Fatalf("accepted id %q resolves to %s", id, p)
		}
	})
}
