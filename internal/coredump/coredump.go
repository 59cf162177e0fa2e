package coredump

import (
	"fmt"
	"os"
)

// PatternFile is the kernel's core dump pattern setting.
const PatternFile = "/proc/sys/kernel/core_pattern"

// SetPattern writes pattern verbatim to file (PatternFile in the GCS). An
// empty pattern leaves the kernel's setting alone. Failure is fatal for the
// GCS.
func SetPattern(file, pattern string) error {
	if pattern == "" {
		return nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("set core dump location: %w", err)
	}
	if _, err := f.WriteString(pattern); err != nil {
		f.Close()
		return fmt.Errorf("set core dump location: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("set core dump location: %w", err)
	}
	return nil
}
