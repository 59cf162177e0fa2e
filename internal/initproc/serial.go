package initproc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FindVirtioPort returns the device path (<devRoot>/vportNpM) of the
// virtio-serial port whose name is name, waiting until it shows up under
// <sysRoot>/class/virtio-ports (the driver learns port names
// asynchronously) and its device node exists. There is no udev, so the
// /dev/virtio-ports/<name> links do not exist.
func FindVirtioPort(ctx context.Context, sysRoot, devRoot, name string, poll time.Duration) (string, error) {
	for {
		matches, _ := filepath.Glob(filepath.Join(sysRoot, "class/virtio-ports/*/name"))
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			dev := filepath.Join(devRoot, filepath.Base(filepath.Dir(m)))
			if _, err := os.Stat(dev); err == nil {
				return dev, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %q: %w", ErrPortNotFound, name, ctx.Err())
		case <-time.After(poll):
		}
	}
}
