package devicemapper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/storage/devices"
)

// SectorSize is the unit of target start and length.
const SectorSize = 512

const (
	createRetryInterval = 100 * time.Millisecond
	removeAttempts      = 10
	removeRetryInterval = 100 * time.Millisecond
	miscMajor           = 10
)

// Target is one line of a device-mapper table.
type Target struct {
	Start  uint64 // first sector of the mapped device this target covers
	Length uint64 // sectors
	Type   string // "linear", "verity", "crypt", ...
	Params string
}

// Mapper creates device-mapper devices. Nodes go to <Dev root>/mapper.
type Mapper struct {
	Roots devices.Roots
	// Log receives a debug line per device made or removed; nil discards.
	Log *logrus.Entry
}

// New returns a Mapper for the given roots.
func New(roots devices.Roots) *Mapper { return &Mapper{Roots: roots} }

// Path returns the node path of the mapped device name.
func (m *Mapper) Path(name string) string { return m.Roots.DevPath("mapper", name) }

// checkName rejects names that the kernel refuses or that escape
// /dev/mapper.
func checkName(name string) error {
	if name == "" || len(name) >= nameLen || name == "." || name == ".." ||
		strings.ContainsAny(name, "/\x00 ") || name == "control" {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	return nil
}

// Available reports (as an error wrapping ErrUnavailable) whether the
// running kernel has device-mapper, as listed in /proc/misc.
func Available() error {
	_, err := controlMinor()
	return err
}

func controlMinor() (uint32, error) {
	f, err := os.Open("/proc/misc")
	if err != nil {
		return 0, fmt.Errorf("read /proc/misc: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[1] == "device-mapper" {
			n, err := strconv.ParseUint(fields[0], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/misc %q: %w", s.Text(), err)
			}
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("no device-mapper entry in /proc/misc: %w", ErrUnavailable)
}

// openControl opens <dev>/mapper/control, creating the node from
// /proc/misc if it is missing.
func (m *Mapper) openControl() (*os.File, error) {
	p := m.Roots.DevPath("mapper", "control")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	minor, err := controlMinor()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(miscMajor, minor))); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("mknod %s: %w", p, err)
	}
	f, err = os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return f, nil
}

// retryable reports the errors on which creation is retried.
func retryable(err error) bool {
	return errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV)
}

// Create makes device name with the given table (read-only if ro), resumes
// it and creates its node. It retries every 100 ms on EBUSY, ENOENT, ENXIO
// and ENODEV until ctx ends. On failure nothing is left behind. It returns
// the node path.
func (m *Mapper) Create(ctx context.Context, name string, ro bool, targets []Target) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if len(targets) == 0 {
		return "", fmt.Errorf("no targets for %s: %w", name, ErrBadTarget)
	}
	for _, t := range targets {
		if t.Length == 0 || strings.ContainsRune(t.Params, 0) {
			return "", fmt.Errorf("%s target of %s: %w", t.Type, name, ErrBadTarget)
		}
	}
	control, err := m.openControl()
	if err != nil {
		return "", err
	}
	defer control.Close()

	var path string
	for {
		path, err = m.create(control, name, ro, targets)
		if err == nil || !retryable(err) {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("create device-mapper device %s: %w (gave up: %w)", name, err, ctx.Err())
		case <-time.After(createRetryInterval):
		}
	}
	if err != nil {
		return "", fmt.Errorf("create device-mapper device %s: %w", name, err)
	}
	logging.Or(m.Log).WithFields(logrus.Fields{"name": name, "path": path, "targets": len(targets), "type": targets[0].Type}).Debug("device-mapper device created")
	return path, nil
}

func (m *Mapper) create(control *os.File, name string, ro bool, targets []Target) (_ string, err error) {
	reply, err := do(control, unix.DM_DEV_CREATE, request{name: name})
	if err != nil {
		return "", fmt.Errorf("DM_DEV_CREATE: %w", err)
	}
	defer func() {
		if err != nil {
			_ = removeDevice(control, name)
		}
	}()
	var flags uint32
	if ro {
		flags |= unix.DM_READONLY_FLAG
	}
	if _, err := do(control, unix.DM_TABLE_LOAD, request{name: name, flags: flags, targets: targets}); err != nil {
		return "", fmt.Errorf("DM_TABLE_LOAD: %w", err)
	}
	// DM_DEV_SUSPEND without DM_SUSPEND_FLAG resumes and activates the table.
	if _, err := do(control, unix.DM_DEV_SUSPEND, request{name: name}); err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	dev := replyDev(reply)
	path := m.Path(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	err = unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(unix.Major(dev), unix.Minor(dev))))
	if errors.Is(err, unix.EEXIST) {
		// udev (or a stale node) got there first: make sure it is ours.
		var st unix.Stat_t
		if serr := unix.Stat(path, &st); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK &&
			unix.Major(st.Rdev) == unix.Major(dev) && unix.Minor(st.Rdev) == unix.Minor(dev) {
			err = nil
		} else {
			_ = os.Remove(path)
			err = unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(unix.Major(dev), unix.Minor(dev))))
		}
	}
	if err != nil {
		return "", fmt.Errorf("mknod %s: %w", path, err)
	}
	return path, nil
}

func removeDevice(control *os.File, name string) error {
	_, err := do(control, unix.DM_DEV_REMOVE, request{name: name})
	return err
}

// Remove deletes device name and its node, retrying up to 10 times while
// the device is busy. A device that does not exist is an error wrapping
// ENXIO; callers that tolerate that can check with errors.Is.
func (m *Mapper) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	control, err := m.openControl()
	if err != nil {
		return err
	}
	defer control.Close()
	for attempt := 1; ; attempt++ {
		err = removeDevice(control, name)
		if err == nil || !errors.Is(err, unix.EBUSY) || attempt >= removeAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove device-mapper device %s: %w", name, ctx.Err())
		case <-time.After(removeRetryInterval):
		}
	}
	if rerr := os.Remove(m.Path(name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("remove device-mapper device %s: %w", name, err)
	}
	logging.Or(m.Log).WithField("name", name).Debug("device-mapper device removed")
	return nil
}
