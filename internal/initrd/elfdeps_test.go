package initrd

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// requireHostProgram returns p, or skips (fails in CI, where
// test/setup/deps.sh has installed it) when it is missing.
func requireHostProgram(t *testing.T, p string) string {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing; test/setup/deps.sh installs it: %v", p, err)
		}
		t.Skipf("%s not installed", p)
	}
	return p
}

func libNames(libs []string) []string {
	var n []string
	for _, l := range libs {
		n = append(n, filepath.Base(l))
	}
	return n
}

// TestClosureOfRealPrograms resolves the closure of real programs on this
// machine and compares it with what they are known to need.
func TestClosureOfRealPrograms(t *testing.T) {
	tests := []struct {
		name     string
		prog     string
		interp   string
		want     []string // library base names that must be there
		wantNot  []string // and must not
		indirect string   // a library needed only through another one
	}{
		{name: "mke2fs", prog: "/sbin/mke2fs", interp: "/lib64/ld-linux-x86-64.so.2",
			want: []string{"libext2fs.so.2", "libcom_err.so.2", "libblkid.so.1", "libuuid.so.1", "libe2p.so.2", "libc.so.6"},
			// libc's DT_NEEDED names the loader, which is loaded already.
			wantNot: []string{"ld-linux-x86-64.so.2"}},
		{name: "mkfs.xfs", prog: "/usr/sbin/mkfs.xfs", interp: "/lib64/ld-linux-x86-64.so.2",
			want: []string{"libblkid.so.1", "libuuid.so.1", "libinih.so.1", "liburcu.so.8", "libc.so.6"}},
		{name: "chronyd", prog: "/usr/sbin/chronyd", interp: "/lib64/ld-linux-x86-64.so.2",
			want: []string{"libgnutls.so.30", "libnettle.so.8", "libcap.so.2", "libm.so.6", "libc.so.6"},
			// gnutls -> p11-kit -> libffi: two levels down.
			indirect: "libffi.so.8"},
		{name: "static busybox", prog: "/bin/busybox"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireHostProgram(t, tc.prog)
			deps, err := LibResolver{}.Closure(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			if deps.Interp != tc.interp {
				t.Errorf("interp %q, want %q", deps.Interp, tc.interp)
			}
			names := libNames(deps.Libs)
			for _, w := range tc.want {
				if !slices.Contains(names, w) {
					t.Errorf("closure %v lacks %s", names, w)
				}
			}
			for _, w := range tc.wantNot {
				if slices.Contains(names, w) {
					t.Errorf("closure %v has %s", names, w)
				}
			}
			if tc.indirect != "" {
				if !slices.Contains(names, tc.indirect) {
					t.Errorf("closure %v lacks the indirect %s", names, tc.indirect)
				}
				direct, _ := elfNeeded(t, tc.prog)
				if slices.Contains(direct, tc.indirect) {
					t.Errorf("%s is a direct dependency; the case tests nothing", tc.indirect)
				}
			}
			if tc.interp == "" && len(deps.Libs) != 0 {
				t.Errorf("static program with libraries %v", deps.Libs)
			}
			if !slices.IsSorted(deps.Libs) || len(slices.Compact(slices.Clone(deps.Libs))) != len(deps.Libs) {
				t.Errorf("libraries not sorted and unique: %v", deps.Libs)
			}
			for _, l := range deps.Libs {
				if !slices.Contains(LibraryDirs, filepath.Dir(l)) {
					t.Errorf("%s is outside the loader's search path", l)
				}
			}
			// ldd (the loader itself) agrees on the set.
			if ldd := lddNames(t, tc.prog); ldd != nil {
				slices.Sort(names)
				if strings.Join(ldd, " ") != strings.Join(names, " ") {
					t.Errorf("closure %v, ldd says %v", names, ldd)
				}
			}
		})
	}
}

func elfNeeded(t *testing.T, p string) ([]string, error) {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.ImportedLibraries()
}

// lddNames lists the library base names ldd resolves (nil without ldd or
// for a static program), leaving out the vDSO and the loader.
func lddNames(t *testing.T, prog string) []string {
	t.Helper()
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		name, _, ok := strings.Cut(strings.TrimSpace(line), " => ")
		if ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestClosureErrors(t *testing.T) {
	mke2fs := requireHostProgram(t, "/sbin/mke2fs")
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A directory holding only an i386-looking impostor: same name, wrong
	// class, so the loader would skip it.
	wrongClass := t.TempDir()
	if err := os.WriteFile(filepath.Join(wrongClass, "libext2fs.so.2"), elf32Header(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    LibResolver
		prog string
		want error
	}{
		{"not ELF", LibResolver{}, notELF, ErrNotELF},
		{"missing file", LibResolver{}, "/nonexistent/prog", ErrNotELF},
		{"library not in the search path", LibResolver{Dirs: []string{t.TempDir()}}, mke2fs, ErrMissingLibrary},
		{"only a wrong-class candidate", LibResolver{Dirs: []string{wrongClass}}, mke2fs, ErrMissingLibrary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.r.Closure(tc.prog)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// elf32Header is the start of a 32-bit x86 ELF shared object: enough for
// debug/elf to read its class and machine.
func elf32Header() []byte {
	h := make([]byte, 52)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = byte(elf.ELFCLASS32), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	h[16] = byte(elf.ET_DYN)
	h[18] = byte(elf.EM_386)
	h[20] = 1 // e_version
	h[40] = 52
	return h
}

// TestClosureRunsInEmptyRoot copies each program with exactly its closure
// into an otherwise empty root and runs it there (chroot, as root): if
// anything were missing, the loader would fail before the program prints
// its version.
func TestClosureRunsInEmptyRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	tests := []struct {
		prog string
		args []string
		want string
	}{
		{"/sbin/mke2fs", []string{"-V"}, "mke2fs 1."},
		{"/usr/sbin/mkfs.xfs", []string{"-V"}, "mkfs.xfs version"},
		{"/usr/sbin/chronyd", []string{"-v"}, "chronyd (chrony) version"},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.prog), func(t *testing.T) {
			requireHostProgram(t, tc.prog)
			deps, err := LibResolver{}.Closure(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			for _, f := range append([]string{tc.prog, deps.Interp}, deps.Libs...) {
				dst := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, b, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(tc.prog, tc.args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
			cmd.Dir = "/"
			cmd.Env = []string{}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("%s in a root with only its closure: %v\n%s", tc.prog, err, out)
			}
		})
	}
}

// TestParts checks that the per-part byte counts add up to the image's
// regular files and symlinks, and that a shared library is counted once,
// under the shared part.
func TestParts(t *testing.T) {
	requireHostProgram(t, "/sbin/mke2fs")
	requireHostProgram(t, "/usr/sbin/mkfs.xfs")
	l := fakeInputs(t)
	l.ModulesDir = ""
	l.Programs = []HostProgram{{Path: "sbin/mke2fs", Links: []string{"sbin/mkfs.ext4"}}, {Path: "sbin/mkfs.xfs"}}
	tr, err := l.Build()
	if err != nil {
		t.Fatal(err)
	}
	parts, err := l.Parts(tr)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	byName := map[string]Part{}
	for _, p := range parts {
		sum += p.Bytes
		byName[p.Name] = p
	}
	var want int64
	for _, p := range tr.Paths() {
		e, _ := tr.Lookup(p)
		switch e.Mode & ModeTypeMask {
		case ModeRegular:
			_, size, err := e.content()
			if err != nil {
				t.Fatal(err)
			}
			want += size
		case ModeSymlink:
			want += int64(len(e.Target))
		}
	}
	if sum != want {
		t.Errorf("parts sum to %d bytes, the image holds %d", sum, want)
	}
	libc, _ := os.Stat("/lib/x86_64-linux-gnu/libc.so.6")
	shared := byName["libraries and loader shared by several programs"]
	if libc == nil || shared.Bytes < libc.Size() {
		t.Errorf("shared part %+v does not hold libc", shared)
	}
	// libext2fs is mke2fs's alone; libinih mkfs.xfs's alone.
	ext2fs, _ := os.Stat("/lib/x86_64-linux-gnu/libext2fs.so.2")
	if p := byName["mke2fs with the libraries only it needs"]; ext2fs == nil || p.Bytes < ext2fs.Size() || p.Files < 2 {
		t.Errorf("mke2fs part %+v", p)
	}
	if p := byName["mkfs.xfs with the libraries only it needs"]; p.Files < 2 {
		t.Errorf("mkfs.xfs part %+v", p)
	}
	var buf strings.Builder
	if err := WriteParts(&buf, parts); err != nil || !strings.Contains(buf.String(), "total unpacked") {
		t.Errorf("table %q, %v", buf.String(), err)
	}
}

func TestReleaseFlavourAndFindModulesDir(t *testing.T) {
	for _, tc := range []struct{ release, flavour string }{
		{"6.1.0-57-amd64", "amd64"},
		{"6.1.0-57-cloud-amd64", "cloud-amd64"},
		{"6.1.0-9-rt-amd64", "rt-amd64"},
		{"6.18.44-fc-v1252", ""},
		{"6.1.0", ""},
		{"", ""},
	} {
		if got := ReleaseFlavour(tc.release); got != tc.flavour {
			t.Errorf("ReleaseFlavour(%q) = %q, want %q", tc.release, got, tc.flavour)
		}
	}
	root := t.TempDir()
	for _, rel := range []string{"6.1.0-9-amd64", "6.1.0-57-amd64", "6.1.0-60-cloud-amd64", "6.1.0-10-amd64"} {
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, rel, "modules.dep"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ flavour, want string }{
		{"amd64", "6.1.0-57-amd64"}, // numerically newest, the cloud one left out
		{"cloud-amd64", "6.1.0-60-cloud-amd64"},
		{"rt-amd64", ""},
	} {
		got := findModulesDir(root, tc.flavour)
		if (tc.want == "" && got != "") || (tc.want != "" && got != filepath.Join(root, tc.want)) {
			t.Errorf("findModulesDir(%q) = %q, want %q", tc.flavour, got, tc.want)
		}
	}
}
