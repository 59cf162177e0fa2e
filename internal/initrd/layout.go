package initrd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opengcs/opengcs/internal/initrd/moddep"
)

// HyperVModules are the Hyper-V guest drivers a UVM needs on a Windows
// host when the kernel builds them as modules (the Debian cloud kernel
// does): VMBus, storvsc (SCSI layers), hv_sock (the bridge and every other
// host connection), netvsc, vPCI, the utilities (shutdown, the Hyper-V
// PTP clock for time sync) and the balloon. Outside Hyper-V hv_vmbus
// refuses to load, and so does everything that depends on it.
var HyperVModules = []string{
	"hv_vmbus", "hv_storvsc", "hv_sock", "hv_netvsc", "hv_utils", "hv_balloon", "pci_hyperv",
}

// PortableModules are the modules an image carries whatever the
// hypervisor: the virtio transport and console (the bridge port under
// QEMU), SCSI and pmem (layers), virtio-fs, overlay (container roots), dm
// (verity, and crypt with the xts and ecb templates its aes-xts-plain64
// cipher needs: the kernel cannot load them on demand without modprobe),
// guest-side vsock, and container networking.
var PortableModules = []string{
	"virtio_pci", "virtio_console", "virtio_net", "virtio_scsi", "virtio_blk", "sd_mod",
	"nfit", "nd_pmem", "nd_btt", "virtio_pmem",
	"virtiofs", "overlay",
	"dm_mod", "dm_verity", "dm_crypt", "xts", "ecb",
	"vsock", "vmw_vsock_virtio_transport", "vsock_loopback",
	"veth", "bridge", "br_netfilter", "nf_conntrack",
}

// DefaultModules are the modules of the production image: HyperVModules
// and PortableModules. Dependencies are added automatically; names
// missing from the kernel's modules.dep (built in) are skipped.
var DefaultModules = append(append([]string(nil), HyperVModules...), PortableModules...)

// Layout describes an opengcs utility VM image (docs/vm.md, "Image layout").
// Paths are host paths of the inputs.
type Layout struct {
	Init      string // -> /init (required)
	GCS       string // -> /bin/gcs (required)
	VsockExec string // -> /bin/vsockexec (required)
	Runc      string // -> /bin/runc, a static binary (optional)
	Busybox   string // -> /bin/busybox (optional)
	// BusyboxApplets are paths relative to / (as `busybox --list-full`
	// prints them) that become symlinks to /bin/busybox unless the image
	// already has that path.
	BusyboxApplets []string
	// ModulesDir is the kernel's /lib/modules/<release> directory
	// (optional). Its base name is the release.
	ModulesDir string
	// Modules names the modules to carry; nil means DefaultModules.
	Modules []string
	// Programs are programs of the build machine (Debian packages) copied
	// into the image together with their dynamic loader and shared
	// libraries (LibResolver.Closure). They are added before the busybox
	// applet links, so a real program wins over an applet of the same name.
	Programs []HostProgram
	// Libs finds the programs' libraries; the zero value searches
	// LibraryDirs.
	Libs LibResolver
	// Info holds build metadata written as /info/<name>.
	Info map[string]string
}

// HostProgram is one program copied from the build machine.
type HostProgram struct {
	// Path is the program's path in the image, without a leading slash.
	Path string
	// Source is its path on the build machine; "/"+Path when empty.
	Source string
	// Links are further paths in the image that become symlinks to Path
	// (mke2fs behaves as mkfs.ext4 when started under that name).
	Links []string
}

// HostPrograms are the programs of the production image that come from
// Debian packages, each at the path its package installs it:
//
//   - mkfs.ext4 (e2fsprogs' mke2fs): the host formats every container
//     scratch disk by running it in the UVM, and the gcs formats an
//     unformatted scratch with it;
//   - mkfs.xfs (xfsprogs): the gcs formats an encrypted scratch with it;
//   - chronyd (chrony): time sync against the Hyper-V PTP clock.
//
// docs/vm.md lists what the host runs in the UVM and where it comes from.
var HostPrograms = []HostProgram{
	{Path: "sbin/mke2fs", Links: []string{"sbin/mkfs.ext4"}},
	{Path: "sbin/mkfs.xfs"},
	{Path: "usr/sbin/chronyd"},
}

// Build returns the image tree.
func (l Layout) Build() (*Tree, error) {
	t := NewTree()
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run", "tmp", "etc", "var", "root", "mnt", "lib/modules"} {
		if err := t.Dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := t.Add("tmp", Entry{Mode: ModeDir | 0o1777}); err != nil {
		return nil, err
	}
	// The kernel opens /dev/console for PID 1's stdio before anything
	// mounts devtmpfs, so the node must be in the archive.
	if err := t.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return nil, err
	}
	bins := []struct {
		dst, src string
		required bool
	}{
		{"init", l.Init, true},
		{"bin/gcs", l.GCS, true},
		{"bin/vsockexec", l.VsockExec, true},
		{"bin/runc", l.Runc, false},
		{"bin/busybox", l.Busybox, false},
	}
	for _, b := range bins {
		if b.src == "" {
			if b.required {
				return nil, fmt.Errorf("%w: no input for /%s", ErrMissingInput, b.dst)
			}
			continue
		}
		if err := t.HostFile(b.dst, 0o755, b.src); err != nil {
			return nil, err
		}
	}
	for _, p := range l.Programs {
		if err := l.addProgram(t, p); err != nil {
			return nil, err
		}
	}
	if err := addConfigFiles(t); err != nil {
		return nil, err
	}
	if l.Busybox != "" {
		for _, a := range l.BusyboxApplets {
			a = strings.TrimPrefix(strings.TrimSpace(a), "/")
			if a == "" || a == "linuxrc" || a == "bin/busybox" {
				continue
			}
			if _, taken := t.Lookup(a); taken {
				continue
			}
			if err := t.Symlink(a, "/bin/busybox"); err != nil {
				return nil, err
			}
		}
	}
	if l.ModulesDir != "" {
		if err := l.addModules(t); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(l.Info))
	for n := range l.Info {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.File(path.Join("info", n), 0o644, []byte(l.Info[n])); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// addProgram adds a host program, its links, its loader and its
// libraries. Libraries go where the loader finds them (LibraryDirs), the
// loader at its PT_INTERP path; each is a regular file with the content
// of the build machine's file (symlinks followed).
func (l Layout) addProgram(t *Tree, p HostProgram) error {
	src := p.Source
	if src == "" {
		src = "/" + p.Path
	}
	deps, err := l.Libs.Closure(src)
	if err != nil {
		return fmt.Errorf("%w: /%s: %w", ErrMissingInput, p.Path, err)
	}
	if err := t.HostFile(p.Path, 0o755, src); err != nil {
		return err
	}
	for _, link := range p.Links {
		if err := t.Symlink(link, "/"+p.Path); err != nil {
			return err
		}
	}
	if deps.Interp != "" {
		if err := t.HostFile(deps.Interp, 0o755, deps.Interp); err != nil {
			return err
		}
	}
	for _, lib := range deps.Libs {
		if err := t.HostFile(lib, 0o755, lib); err != nil {
			return err
		}
	}
	return nil
}

func (l Layout) addModules(t *Tree) error {
	release := filepath.Base(filepath.Clean(l.ModulesDir))
	depText, err := os.ReadFile(filepath.Join(l.ModulesDir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMissingInput, err)
	}
	deps, err := moddep.Parse(bytes.NewReader(depText))
	if err != nil {
		return err
	}
	want := l.Modules
	if want == nil {
		want = DefaultModules
	}
	var present []string
	for _, n := range want {
		if _, ok := deps.Lookup(n); ok {
			present = append(present, n)
		}
	}
	files, err := deps.Order(present...)
	if err != nil {
		return fmt.Errorf("modules of %s: %w", release, err)
	}
	dst := path.Join("lib/modules", release)
	for _, f := range files {
		if err := t.HostFile(path.Join(dst, f), 0o644, filepath.Join(l.ModulesDir, filepath.FromSlash(f))); err != nil {
			return err
		}
	}
	sub, err := deps.Subset(files)
	if err != nil {
		return err
	}
	return t.File(path.Join(dst, "modules.dep"), 0o644, sub)
}

// BusyboxApplets asks a busybox binary for its applet paths
// (`busybox --list-full`).
func BusyboxApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	return strings.Fields(string(out)), nil
}

// FindModulesDir returns the /lib/modules/<release> directory of the
// newest installed kernel whose release ends with suffix (for example
// "-cloud-amd64"), or "" when there is none.
func FindModulesDir(suffix string) string {
	deps, _ := filepath.Glob("/lib/modules/*" + suffix + "/modules.dep")
	if len(deps) == 0 {
		return ""
	}
	sort.Slice(deps, func(i, j int) bool { return versionLess(deps[i], deps[j]) })
	return filepath.Dir(deps[len(deps)-1])
}

// versionLess compares paths with embedded numbers numerically.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ia, ib := digitsEnd(a), digitsEnd(b)
		if ia > 0 && ib > 0 {
			na, nb := strings.TrimLeft(a[:ia], "0"), strings.TrimLeft(b[:ib], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[ia:], b[ib:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitsEnd(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
