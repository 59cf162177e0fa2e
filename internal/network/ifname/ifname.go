package ifname

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opengcs/opengcs/internal/poll"
)

// DefaultTimeout bounds a lookup when the caller's context has no deadline.
const DefaultTimeout = 5 * time.Second

// DefaultPollInterval is how often sysfs is re-read while waiting.
const DefaultPollInterval = 10 * time.Millisecond

// DefaultRoot is the sysfs mount point of a real system.
const DefaultRoot = "/sys"

// Sysfs resolves adapter ids by reading a sysfs tree rooted at Root.
type Sysfs struct {
	// Root is the sysfs mount point ("/sys" on a real system).
	Root string
	// Poll is the re-read interval while waiting; DefaultPollInterval if 0.
	Poll time.Duration
}

// New returns a resolver reading the sysfs tree at root.
func New(root string) *Sysfs { return &Sysfs{Root: root} }

// ValidateID reports whether id is a GUID in its textual form
// (8-4-4-4-12 hex digits), the only shape of a VMBus instance id. Nothing
// else may reach a path, so an id can never point outside the sysfs root.
func ValidateID(id string) error {
	if len(id) != 36 {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%w: %q", ErrInvalidID, id)
			}
		default:
			if !isHex(c) {
				return fmt.Errorf("%w: %q", ErrInvalidID, id)
			}
		}
	}
	return nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// InterfaceName waits for the network device with VMBus instance id to show
// up and returns its interface name. vpci selects the vPCI layout. The wait
// ends at ctx's deadline, or after DefaultTimeout when ctx has none.
func (s *Sysfs) InterfaceName(ctx context.Context, id string, vpci bool) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	id = strings.ToLower(id)
	device := filepath.Join(s.Root, "bus", "vmbus", "devices", id)

	var netDir string
	err := s.poll(ctx, func() (bool, error) {
		dir := filepath.Join(device, "net")
		if vpci {
			var err error
			dir, err = pciNetDir(device)
			if dir == "" || err != nil {
				return false, err
			}
		}
		if _, err := os.Stat(dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return false, fmt.Errorf("stat %s: %w", dir, err)
		}
		netDir = dir
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("adapter %s: %w", id, err)
	}

	entries, err := os.ReadDir(netDir)
	if err != nil {
		return "", fmt.Errorf("adapter %s: read %s: %w", id, netDir, err)
	}
	if len(entries) != 1 {
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return "", fmt.Errorf("adapter %s: %w: %s holds %q", id, ErrAmbiguous, netDir, names)
	}
	name := entries[0].Name()
	return name, nil
}

// pciNetDir finds <device>/pci<bus>/<bus>*/net. It returns "" while the PCI
// directories have not appeared yet.
func pciNetDir(device string) (string, error) {
	buses, err := filepath.Glob(filepath.Join(device, "pci*"))
	if err != nil || len(buses) == 0 {
		return "", err
	}
	bus := buses[0]
	prefix := strings.TrimPrefix(filepath.Base(bus), "pci")
	slots, err := filepath.Glob(filepath.Join(bus, globQuote(prefix)+"*"))
	if err != nil || len(slots) == 0 {
		return "", err
	}
	return filepath.Join(slots[0], "net"), nil
}

// globQuote escapes the glob metacharacters in s.
func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// poll calls check until it reports done, fails, or ctx ends.
func (s *Sysfs) poll(ctx context.Context, check func() (bool, error)) error {
	interval := s.Poll
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if err := poll.Until(ctx, interval, check); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	return nil
}
