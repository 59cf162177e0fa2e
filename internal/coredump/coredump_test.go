package coredump

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetPattern(t *testing.T) {
	for _, tc := range []struct {
		name, initial, pattern, want string
	}{
		{"path pattern", "core\n", "/var/crash/core.%e.%p", "/var/crash/core.%e.%p"},
		{"pipe pattern verbatim", "core\n", "|/bin/handler %p", "|/bin/handler %p"},
		{"empty leaves it alone", "core\n", "", "core\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "core_pattern")
			if err := os.WriteFile(file, []byte(tc.initial), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := SetPattern(file, tc.pattern); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(file)
			if err != nil || string(b) != tc.want {
				t.Fatalf("file = %q, %v; want %q", b, err, tc.want)
			}
		})
	}
	if err := SetPattern(filepath.Join(t.TempDir(), "missing", "core_pattern"), "x"); err == nil {
		t.Fatal("SetPattern on a missing file succeeded")
	}
}

// TestSetPatternKernel writes the kernel's current pattern back to it: the
// real write path, without changing the machine's setting.
func TestSetPatternKernel(t *testing.T) {
	b, err := os.ReadFile(PatternFile)
	if err != nil {
		t.Fatal(err)
	}
	current := strings.TrimSuffix(string(b), "\n")
	if err := SetPattern(PatternFile, current); err != nil {
		t.Fatalf("SetPattern(%s): %v", PatternFile, err)
	}
	after, err := os.ReadFile(PatternFile)
	if err != nil || string(after) != string(b) {
		t.Fatalf("pattern changed: %q -> %q, %v", b, after, err)
	}
}
