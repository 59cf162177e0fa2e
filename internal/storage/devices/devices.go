package devices

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/poll"
)

// PollInterval is how often the wait helpers look again.
const PollInterval = 10 * time.Millisecond

// Roots locates sysfs and /dev. The zero value is not usable; use
// DefaultRoots or set both fields.
type Roots struct {
	Sys string // sysfs mount point, normally /sys
	Dev string // device node directory, normally /dev
}

// DefaultRoots returns the real system locations.
func DefaultRoots() Roots { return Roots{Sys: "/sys", Dev: "/dev"} }

// SysPath joins elem below the sysfs root.
func (r Roots) SysPath(elem ...string) string {
	return filepath.Join(append([]string{r.Sys}, elem...)...)
}

// DevPath joins elem below the /dev root.
func (r Roots) DevPath(elem ...string) string {
	return filepath.Join(append([]string{r.Dev}, elem...)...)
}

// Poll calls check every PollInterval until it reports done, returns an
// error, or ctx ends. A context end is reported as ErrTimeout wrapping what
// was awaited.
func Poll(ctx context.Context, what string, check func() (bool, error)) error {
	if err := poll.Until(ctx, PollInterval, check); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", ErrTimeout, what, err)
		}
		return err
	}
	return nil
}

// WaitOpen waits until path can be opened, retrying while opening fails with
// ENOENT or ENXIO (node not created yet, device not ready).
func WaitOpen(ctx context.Context, path string) error {
	return Poll(ctx, "open "+path, func() (bool, error) {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
			return true, nil
		}
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
			return false, nil
		}
		return false, fmt.Errorf("open %s: %w", path, err)
	})
}
