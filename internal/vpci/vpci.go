package vpci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/poll"
	"github.com/opengcs/opengcs/internal/storage/devices"
)

// nodeInterval paces the search for device nodes, which walks /dev: slower
// than the sysfs lookup (the reference looks every 500 ms).
const nodeInterval = 100 * time.Millisecond

// guidRE is a VMBus instance id: a GUID without braces.
var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Finder looks assigned PCI devices up below its roots.
type Finder struct {
	roots devices.Roots
}

// New returns a Finder reading sysfs and /dev below roots.
func New(roots devices.Roots) *Finder { return &Finder{roots: roots} }

// Wait waits until the PCI device behind VMBus instance id vmbusID is
// present and returns its sysfs directory. It ends with ctx (the error then
// wraps devices.ErrTimeout).
func (f *Finder) Wait(ctx context.Context, vmbusID string) (string, error) {
	if !guidRE.MatchString(vmbusID) {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, vmbusID)
	}
	dev := f.roots.SysPath("bus", "vmbus", "devices", strings.ToLower(vmbusID))
	busDir, err := f.waitOne(ctx, filepath.Join(dev, "pci*"))
	if err != nil {
		return "", err
	}
	prefix := strings.TrimPrefix(filepath.Base(busDir), "pci")
	return f.waitOne(ctx, filepath.Join(busDir, prefix+"*"))
}

// waitOne waits until exactly one path matches pattern.
func (f *Finder) waitOne(ctx context.Context, pattern string) (string, error) {
	var found string
	err := devices.Poll(ctx, pattern, func() (bool, error) {
		m, err := filepath.Glob(pattern)
		switch {
		case err != nil:
			return false, err
		case len(m) > 1:
			return false, fmt.Errorf("%w: %s: %v", ErrAmbiguous, pattern, m)
		case len(m) == 1:
			found = m[0]
			return true, nil
		}
		return false, nil
	})
	return found, err
}

// DeviceNodes waits for the device behind vmbusID and then for the device
// nodes that belong to it, and returns them as container devices at their
// /dev paths, with type, numbers and owner taken from the nodes.
func (f *Finder) DeviceNodes(ctx context.Context, vmbusID string) ([]specs.LinuxDevice, error) {
	pciPath, err := f.Wait(ctx, vmbusID)
	if err != nil {
		return nil, err
	}
	pciReal, err := filepath.EvalSymlinks(pciPath)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", pciPath, err)
	}
	var out []specs.LinuxDevice
	err = poll.Until(ctx, nodeInterval, func() (bool, error) {
		var err error
		out, err = f.nodesBelow(pciReal)
		return len(out) > 0, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s (%s): %w", ErrNoDeviceNodes, vmbusID, pciPath, err)
		}
		return nil, err
	}
	return out, nil
}

// nodesBelow lists the device nodes under the /dev root whose sysfs entry
// resolves at or below pciReal.
func (f *Finder) nodesBelow(pciReal string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(f.roots.Dev, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p != f.roots.Dev && errors.Is(err, fs.ErrNotExist) {
				return nil // vanished while walking
			}
			return err
		}
		if de.IsDir() {
			switch de.Name() {
			case "pts", "shm", "fd", "mqueue":
				if p != f.roots.Dev {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if de.Type()&fs.ModeDevice == 0 {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		typ, kind := "b", "block"
		if st.Mode&unix.S_IFMT == unix.S_IFCHR {
			typ, kind = "c", "char"
		}
		major, minor := int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
		if major == 0 && minor == 0 {
			return nil
		}
		link := f.roots.SysPath("dev", kind, fmt.Sprintf("%d:%d", major, minor))
		real, err := filepath.EvalSymlinks(link)
		if err != nil || (real != pciReal && !strings.HasPrefix(real, pciReal+"/")) {
			return nil // a node of another device, or none in sysfs
		}
		rel, err := filepath.Rel(f.roots.Dev, p)
		if err != nil {
			return err
		}
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: "/dev/" + filepath.ToSlash(rel), Type: typ, Major: major, Minor: minor, UID: &uid, GID: &gid,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list device nodes under %s: %w", f.roots.Dev, err)
	}
	return out, nil
}
