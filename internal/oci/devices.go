package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/safepath"
)

// DefaultDevRoot is where the UVM's device nodes live.
const DefaultDevRoot = "/dev"

// node is a device node found in the UVM.
type node struct {
	Type         string // "c" or "b"
	Major, Minor int64
	UID, GID     uint32
}

// statNode describes the device node at p without following a final
// symlink; anything but a character or block device is ErrNotDevice.
func statNode(p string) (node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return node{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return node{}, fmt.Errorf("%s: %w", p, ErrNotDevice)
	}
	return node{
		Type:  typ,
		Major: int64(unix.Major(uint64(st.Rdev))),
		Minor: int64(unix.Minor(uint64(st.Rdev))),
		UID:   st.Uid,
		GID:   st.Gid,
	}, nil
}

// uvmDevicePath maps a container device path ("/dev/...") onto the UVM's
// device root devRoot.
func uvmDevicePath(devRoot, p string) (string, error) {
	rel, ok := strings.CutPrefix(p, "/dev/")
	if !ok {
		return "", fmt.Errorf("device path %q: %w (not below /dev)", p, ErrNotDevice)
	}
	rel, err := safepath.Clean(rel)
	if err != nil || rel == "." {
		return "", fmt.Errorf("device path %q: %w", p, ErrNotDevice)
	}
	return filepath.Join(devRoot, rel), nil
}

// addDevice puts dev into spec.Linux.Devices, replacing an entry with the
// same path, and, when it was new and allow is set, appends an "rwm" allow
// rule for it.
func addDevice(log *logrus.Entry, spec *specs.Spec, dev specs.LinuxDevice, allow bool) {
	for i := range spec.Linux.Devices {
		d := &spec.Linux.Devices[i]
		if d.Path == dev.Path {
			*d = dev
			return
		}
		if d.Type == dev.Type && d.Major == dev.Major && d.Minor == dev.Minor {
			log.WithFields(logrus.Fields{
				"path": dev.Path, "other": d.Path, "type": d.Type, "major": d.Major, "minor": d.Minor,
			}).Warn("two device entries share type and major:minor")
		}
	}
	spec.Linux.Devices = append(spec.Linux.Devices, dev)
	if allow {
		major, minor := dev.Major, dev.Minor
		spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: "rwm",
		})
	}
}

func linuxDevice(path string, n node, fileMode *os.FileMode) specs.LinuxDevice {
	uid, gid := n.UID, n.GID
	return specs.LinuxDevice{
		Path: path, Type: n.Type, Major: n.Major, Minor: n.Minor,
		FileMode: fileMode, UID: &uid, GID: &gid,
	}
}

// ResolveDevices re-resolves every entry of spec.Linux.Devices against the
// UVM's device nodes under devRoot (which stands for /dev): each path must
// name a character or block device there; type, major, minor, uid and gid are
// taken from that node and an "rwm" allow rule is added for it
// (docs/lifecycle.md, "Workload spec setup": Non-privileged devices).
func ResolveDevices(log *logrus.Entry, spec *specs.Spec, devRoot string) error {
	ensureLinuxResources(spec)
	requested := spec.Linux.Devices
	spec.Linux.Devices = []specs.LinuxDevice{}
	for _, d := range requested {
		p, err := uvmDevicePath(devRoot, d.Path)
		if err != nil {
			return err
		}
		n, err := statNode(p)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		if n.Major == 0 && n.Minor == 0 {
			continue
		}
		addDevice(log, spec, linuxDevice(d.Path, n, d.FileMode), true)
	}
	return nil
}

// skippedDevDir reports directories of /dev whose nodes are never handed
// to a privileged container (they are per-namespace or not devices at all).
func skippedDevDir(name string) bool {
	switch name {
	case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
		return true
	}
	return false
}

// AddAllDevices adds every character and block device node under devRoot (as
// /dev/...) to spec.Linux.Devices, skipping pts/, shm/, fd/, mqueue/, console
// and symlinks, and replaces linux.resources.devices with a single allow-all
// "rwm" rule (docs/lifecycle.md, "Workload spec setup": Privileged devices).
func AddAllDevices(log *logrus.Entry, spec *specs.Spec, devRoot string) error {
	ensureLinuxResources(spec)
	err := filepath.WalkDir(devRoot, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p != devRoot && errors.Is(err, fs.ErrNotExist) {
				return nil // vanished while walking
			}
			return err
		}
		if de.IsDir() {
			if p != devRoot && skippedDevDir(de.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if de.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || de.Name() == "console" {
			return nil
		}
		n, err := statNode(p)
		if err != nil {
			if errors.Is(err, ErrNotDevice) || errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if n.Major == 0 && n.Minor == 0 {
			return nil
		}
		rel, err := filepath.Rel(devRoot, p)
		if err != nil {
			return err
		}
		addDevice(log, spec, linuxDevice("/dev/"+filepath.ToSlash(rel), n, nil), false)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list UVM devices under %s: %w", devRoot, err)
	}
	spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	return nil
}

func ensureLinuxResources(spec *specs.Spec) {
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
}
