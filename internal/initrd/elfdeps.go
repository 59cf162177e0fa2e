package initrd

import (
	"debug/elf"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// LibraryDirs are the directories Debian's amd64 dynamic loader searches
// when neither the object (DT_RUNPATH, DT_RPATH) nor /etc/ld.so.cache names
// one: its "system search path" (`/lib64/ld-linux-x86-64.so.2 --help`).
// The image has no ld.so.cache, so a library copied into one of these
// directories is found there. glibc-hwcaps subdirectories are not
// searched: the guest's CPU may lack what the build machine has, and the
// baseline library runs everywhere.
var LibraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}

// ELFDeps is what a program needs from the file system to start: its
// dynamic loader and the closure of its DT_NEEDED libraries.
type ELFDeps struct {
	// Interp is the program's PT_INTERP (the loader's absolute path); ""
	// for a static program.
	Interp string
	// Libs are the absolute paths under which the loader finds each
	// library (the directory it searched joined with the DT_NEEDED name;
	// on the build machine this may be a symlink, and the image gets the
	// content under this path), sorted, without duplicates.
	Libs []string
}

// LibResolver finds shared libraries the way the dynamic loader does: a
// name containing a slash is a path; otherwise the object's DT_RPATH (only
// when it has no DT_RUNPATH, and then also the program's), its DT_RUNPATH,
// then Dirs. $ORIGIN expands to the object's directory. A candidate whose
// ELF class or machine differs from the program's is skipped, as ld.so
// skips it.
type LibResolver struct {
	// Dirs replaces LibraryDirs when not nil.
	Dirs []string
}

// Closure returns prog's loader and every library it needs, directly or
// through another library. A library that cannot be found is an error
// (ErrMissingLibrary): the program would not start in the guest.
func (r LibResolver) Closure(prog string) (ELFDeps, error) {
	f, err := elf.Open(prog)
	if err != nil {
		return ELFDeps{}, fmt.Errorf("%w: %s: %w", ErrNotELF, prog, err)
	}
	defer f.Close()
	var deps ELFDeps
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return ELFDeps{}, fmt.Errorf("%s: read PT_INTERP: %w", prog, err)
		}
		deps.Interp = strings.TrimRight(string(b), "\x00")
	}
	needed, err := dynStrings(f, elf.DT_NEEDED)
	if err != nil {
		return ELFDeps{}, fmt.Errorf("%s: %w", prog, err)
	}
	if deps.Interp == "" && len(needed) == 0 {
		return deps, nil // static
	}
	// The loader is loaded already when the libraries ask for it (libc
	// needs ld-linux-x86-64.so.2), and ld.so matches that request by
	// soname, so it is not searched for again.
	loaded := map[string]bool{}
	if deps.Interp != "" {
		loaded[path.Base(deps.Interp)] = true
		if soname, err := soname(deps.Interp); err == nil && soname != "" {
			loaded[soname] = true
		}
	}
	progRPath, err := searchPath(f, prog, elf.DT_RPATH)
	if err != nil {
		return ELFDeps{}, err
	}
	type object struct {
		path   string
		needed []string
		rpath  []string // DT_RPATH, when the object has no DT_RUNPATH
		run    []string // DT_RUNPATH
	}
	progRun, err := searchPath(f, prog, elf.DT_RUNPATH)
	if err != nil {
		return ELFDeps{}, err
	}
	if len(progRun) > 0 {
		progRPath = nil // DT_RUNPATH disables DT_RPATH
	}
	queue := []object{{path: prog, needed: needed, rpath: progRPath, run: progRun}}
	found := map[string]bool{}
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		for _, name := range o.needed {
			if loaded[name] {
				continue
			}
			dirs := append(append([]string(nil), o.rpath...), progRPath...)
			dirs = append(append(dirs, o.run...), r.dirs()...)
			lib, lf, err := findLibrary(name, dirs, f.Class, f.Machine)
			if err != nil {
				return ELFDeps{}, fmt.Errorf("%s needs %s: %w", o.path, name, err)
			}
			loaded[name] = true
			if found[lib] {
				lf.Close()
				continue
			}
			found[lib] = true
			next := object{path: lib}
			next.needed, err = dynStrings(lf, elf.DT_NEEDED)
			if err == nil {
				next.run, err = searchPath(lf, lib, elf.DT_RUNPATH)
			}
			if err == nil && len(next.run) == 0 {
				next.rpath, err = searchPath(lf, lib, elf.DT_RPATH)
			}
			lf.Close()
			if err != nil {
				return ELFDeps{}, fmt.Errorf("%s: %w", lib, err)
			}
			queue = append(queue, next)
		}
	}
	for l := range found {
		deps.Libs = append(deps.Libs, l)
	}
	sort.Strings(deps.Libs)
	return deps, nil
}

func (r LibResolver) dirs() []string {
	if r.Dirs != nil {
		return r.Dirs
	}
	return LibraryDirs
}

// findLibrary returns the first candidate for name in dirs that is an ELF
// object of the given class and machine, open.
func findLibrary(name string, dirs []string, class elf.Class, machine elf.Machine) (string, *elf.File, error) {
	candidates := []string{name}
	if !strings.Contains(name, "/") {
		candidates = candidates[:0]
		for _, d := range dirs {
			candidates = append(candidates, path.Join(d, name))
		}
	}
	for _, c := range candidates {
		lf, err := elf.Open(c)
		if err != nil {
			continue
		}
		if lf.Class != class || lf.Machine != machine {
			lf.Close()
			continue
		}
		return c, lf, nil
	}
	return "", nil, fmt.Errorf("%w (searched %s)", ErrMissingLibrary, strings.Join(dirs, ":"))
}

// dynStrings returns the dynamic section's strings of tag; a file without
// a dynamic section has none.
func dynStrings(f *elf.File, tag elf.DynTag) ([]string, error) {
	s, err := f.DynString(tag)
	if err != nil {
		return nil, fmt.Errorf("read %v: %w", tag, err)
	}
	return s, nil
}

// searchPath returns the directories of an object's DT_RPATH or
// DT_RUNPATH with $ORIGIN expanded.
func searchPath(f *elf.File, file string, tag elf.DynTag) ([]string, error) {
	vals, err := dynStrings(f, tag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	origin := filepath.Dir(file)
	var dirs []string
	for _, v := range vals {
		for _, d := range strings.Split(v, ":") {
			if d == "" {
				continue
			}
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// soname returns the DT_SONAME of the shared object at p.
func soname(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s, err := dynStrings(f, elf.DT_SONAME)
	if err != nil || len(s) == 0 {
		return "", err
	}
	return s[0], nil
}
