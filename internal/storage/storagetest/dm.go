package storagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
)

// RequireDeviceMapper skips the test, naming the reason, when the running
// kernel has no device-mapper driver (no "device-mapper" in /proc/misc).
// That is a property of the machine, not of the code under test. It also
// registers a check that no device-mapper device whose name starts with
// prefix is left at the end of the test.
func RequireDeviceMapper(t testing.TB, prefix string) {
	t.Helper()
	RequireRoot(t)
	if err := devicemapper.Available(); err != nil {
		t.Skipf("running kernel has no device-mapper driver (%v); the dm tests need CONFIG_BLK_DEV_DM", err)
	}
	t.Cleanup(func() {
		ents, _ := filepath.Glob("/sys/block/dm-*/dm/name")
		for _, e := range ents {
			b, err := os.ReadFile(e)
			if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), prefix) {
				t.Errorf("device-mapper device %s left behind", strings.TrimSpace(string(b)))
			}
		}
	})
}
