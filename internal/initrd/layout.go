package initrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opengcs/opengcs/internal/initrd/moddep"
)

// HyperVModules are the Hyper-V guest drivers a UVM needs on a Windows
// host (Debian's generic kernel builds them as modules): VMBus, storvsc
// (SCSI layers), hv_sock (the bridge and every other host connection),
// netvsc, vPCI, the utilities (shutdown, the Hyper-V PTP clock for time
// sync) and the balloon. Outside Hyper-V hv_vmbus refuses to load, and so
// does everything that depends on it.
var HyperVModules = []string{
	"hv_vmbus", "hv_storvsc", "hv_sock", "hv_netvsc", "hv_utils", "hv_balloon", "pci_hyperv",
}

// PortableModules are the modules an image carries whatever the
// hypervisor, for what the guest does with them:
//
//   - the virtio transport and console (the bridge port under QEMU),
//     virtio-net, and guest-side vsock with its virtio transport;
//   - disks: SCSI (sd_mod, virtio-scsi), virtio-blk, pmem (nfit, nd_pmem,
//     nd_btt, virtio-pmem) and loop;
//   - file systems: ext4 (layers and scratch) and xfs (encrypted scratch),
//     which the generic kernel builds as modules, with crc32c_generic,
//     the crc32c both ask for at load time; overlay (container roots);
//     9p with the fd transport (Plan 9 shares over hv_sock) and the virtio
//     transport; virtio-fs;
//   - device-mapper: verity, and crypt with the xts and ecb templates its
//     aes-xts-plain64 cipher needs (init has no modprobe, so the kernel
//     cannot load them on demand);
//   - container networking: veth, bridge, br_netfilter, nf_conntrack.
var PortableModules = []string{
	"virtio_pci", "virtio_console", "virtio_net", "virtio_scsi", "virtio_blk", "sd_mod",
	"nfit", "nd_pmem", "nd_btt", "virtio_pmem", "loop",
	"ext4", "xfs", "crc32c_generic", "overlay", "9p", "9pnet_fd", "9pnet_virtio", "virtiofs",
	"dm_mod", "dm_verity", "dm_crypt", "xts", "ecb",
	"vsock", "vmw_vsock_virtio_transport", "vsock_loopback",
	"veth", "bridge", "br_netfilter", "nf_conntrack",
}

// DefaultModules are the modules of the production image: HyperVModules
// and PortableModules. Dependencies are added automatically; names
// missing from the kernel's modules.dep (built in) are skipped.
var DefaultModules = append(append([]string(nil), HyperVModules...), PortableModules...)

// KernelFlavour is the Debian kernel flavour the image is built for: the
// generic amd64 kernel (linux-image-amd64), whose release names look like
// 6.1.0-57-amd64.
const KernelFlavour = "amd64"

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
//   - dumpe2fs (e2fsprogs): reads a disk's ext4 superblock, for diagnosis
//     through a host's shell in the UVM and for the storage tests that run
//     in the VM; it needs no library mke2fs does not already bring;
//   - mkfs.xfs (xfsprogs): the gcs formats an encrypted scratch with it;
//   - chronyd (chrony): time sync against the Hyper-V PTP clock.
//
// docs/vm.md lists what the host runs in the UVM and where it comes from.
var HostPrograms = []HostProgram{
	{Path: "sbin/mke2fs", Links: []string{"sbin/mkfs.ext4"}},
	{Path: "sbin/dumpe2fs"},
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
	if err := l.addSoftDeps(deps, files, present); err != nil {
		return fmt.Errorf("modules of %s: %w", release, err)
	}
	if files, err = deps.Order(present...); err != nil {
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

// addSoftDeps turns the kernel's "pre:" soft dependencies among the
// chosen modules into dependencies of the image's modules.dep, so that
// init, which loads in that order and has no modprobe for the kernel's
// on-demand requests, loads for example crc32c_generic before ext4 and
// libcrc32c. A soft dependency on an alias (crypto-crc32c) is satisfied by
// the chosen modules that provide it; one that no chosen module provides
// is left out (the kernel's request for it will fail, as on any system
// without that module). Without modules.softdep or modules.alias nothing
// is added.
func (l Layout) addSoftDeps(deps *moddep.Deps, files, chosen []string) error {
	soft, err := readModFile(l.ModulesDir, "modules.softdep", moddep.ParseSoftdeps)
	if err != nil || len(soft) == 0 {
		return err
	}
	aliases, err := readModFile(l.ModulesDir, "modules.alias", moddep.ParseAliases)
	if err != nil {
		return err
	}
	chosenFile := map[string]string{}
	for _, n := range chosen {
		f, _ := deps.Lookup(n)
		chosenFile[moddep.Name(f)] = f
	}
	for _, f := range files {
		for _, pre := range soft[moddep.Name(f)] {
			for _, m := range append([]string{pre}, aliases[pre]...) {
				if pf, ok := chosenFile[m]; ok && pf != f {
					if err := deps.AddDep(f, pf); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// readModFile parses dir/name with parse; a missing file gives nil.
func readModFile(dir, name string, parse func(io.Reader) (map[string][]string, error)) (map[string][]string, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(f)
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
// newest installed kernel of a Debian flavour ("amd64" for the generic
// kernel, "cloud-amd64" for the cloud one), or "" when there is none. A
// Debian release is <version>-<abi>-<flavour>, so the flavour is what
// follows the first all-digit field after the version: 6.1.0-57-amd64 is
// "amd64", 6.1.0-57-cloud-amd64 is "cloud-amd64".
func FindModulesDir(flavour string) string {
	return findModulesDir("/lib/modules", flavour)
}

func findModulesDir(root, flavour string) string {
	deps, _ := filepath.Glob(filepath.Join(root, "*", "modules.dep"))
	var match []string
	for _, d := range deps {
		if ReleaseFlavour(filepath.Base(filepath.Dir(d))) == flavour {
			match = append(match, d)
		}
	}
	if len(match) == 0 {
		return ""
	}
	sort.Slice(match, func(i, j int) bool { return versionLess(match[i], match[j]) })
	return filepath.Dir(match[len(match)-1])
}

// ReleaseFlavour returns the flavour of a Debian kernel release name (see
// FindModulesDir), or "" when the name has no ABI field.
func ReleaseFlavour(release string) string {
	fields := strings.Split(release, "-")
	for i := 1; i < len(fields)-1; i++ {
		if fields[i] != "" && digitsEnd(fields[i]) == len(fields[i]) {
			return strings.Join(fields[i+1:], "-")
		}
	}
	return ""
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
