package moddep

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Sentinel errors.
var (
	// ErrUnknownModule means a requested module is not in modules.dep.
	ErrUnknownModule = errors.New("moddep: unknown module")
	// ErrSyntax means a modules.dep line could not be parsed.
	ErrSyntax = errors.New("moddep: malformed line")
	// ErrCycle means the dependencies form a cycle.
	ErrCycle = errors.New("moddep: dependency cycle")
)

// Deps is a parsed modules.dep: module file paths (relative to
// /lib/modules/<release>) and, for each, the files it needs.
type Deps struct {
	deps   map[string][]string // path -> dependency paths as listed
	byName map[string]string   // normalised module name -> path
}

// Name returns the module name of a module file path: the base name
// without the .ko[.xz|.zst|.gz] suffix, with '-' written as '_' (the
// kernel treats both the same).
func Name(file string) string {
	b := path.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// Parse reads modules.dep text ("path: dep dep ...", one module a line).
func Parse(r io.Reader) (*Deps, error) {
	d := &Deps{deps: map[string][]string{}, byName: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(text, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" {
			return nil, fmt.Errorf("%w %d: %q", ErrSyntax, line, text)
		}
		d.deps[mod] = strings.Fields(rest)
		d.byName[Name(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return d, nil
}

// Lookup returns the file path of a module given by name ("dm-mod" and
// "dm_mod" are the same module).
func (d *Deps) Lookup(name string) (string, bool) {
	p, ok := d.byName[strings.ReplaceAll(name, "-", "_")]
	return p, ok
}

// Files returns every module file listed, sorted.
func (d *Deps) Files() []string {
	fs := make([]string, 0, len(d.deps))
	for f := range d.deps {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	return fs
}

// Order returns the module files needed to load the named modules, each
// after its dependencies, each once, in a stable order: roots are taken
// in the order given and a module's dependencies are visited from the end
// of its modules.dep list (depmod lists the ones to load first last).
func (d *Deps) Order(names ...string) ([]string, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []string
	var visit func(file string, chain []string) error
	visit = func(file string, chain []string) error {
		switch state[file] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("%w: %s", ErrCycle, strings.Join(append(chain, file), " -> "))
		}
		deps, ok := d.deps[file]
		if !ok {
			return fmt.Errorf("%w: %s (needed by %s)", ErrUnknownModule, file, strings.Join(chain, " -> "))
		}
		state[file] = visiting
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], append(chain, file)); err != nil {
				return err
			}
		}
		state[file] = done
		out = append(out, file)
		return nil
	}
	for _, n := range names {
		file, ok := d.Lookup(n)
		if !ok {
			if _, isFile := d.deps[n]; !isFile {
				return nil, fmt.Errorf("%w: %s", ErrUnknownModule, n)
			}
			file = n
		}
		if err := visit(file, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Subset returns modules.dep text restricted to files (which must be
// closed under dependencies, as Order's result is), in the given order.
func (d *Deps) Subset(files []string) ([]byte, error) {
	var b strings.Builder
	for _, f := range files {
		deps, ok := d.deps[f]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnknownModule, f)
		}
		b.WriteString(f)
		b.WriteString(":")
		for _, dep := range deps {
			b.WriteString(" ")
			b.WriteString(dep)
		}
		b.WriteString("\n")
	}
	return []byte(b.String()), nil
}

// AddDep records that module file must be loaded after dep (another file
// listed in modules.dep), as if depmod had listed it. The image builder
// uses it for soft dependencies ("softdep X pre: Y"), which modules.dep
// does not carry but which decide whether a module's init finds what it
// asks the kernel for (ext4 and libcrc32c allocate the crc32c hash; init
// has no modprobe to load it on demand).
func (d *Deps) AddDep(file, dep string) error {
	deps, ok := d.deps[file]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownModule, file)
	}
	if _, ok := d.deps[dep]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownModule, dep)
	}
	for _, x := range deps {
		if x == dep {
			return nil
		}
	}
	// Order visits a module's dependencies from the end of its list, so
	// the added one is loaded first.
	d.deps[file] = append(deps, dep)
	return nil
}

// ParseSoftdeps reads modules.softdep ("softdep <module> pre: <name>...
// post: <name>...") and returns, per module name, the names to load
// before it. A name may be a module or an alias (see ParseAliases).
// "post:" lists and names outside a "pre:" list are ignored.
func ParseSoftdeps(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "softdep" || len(f) < 2 {
			return nil, fmt.Errorf("%w: modules.softdep line %d", ErrSyntax, line)
		}
		mod := normalise(f[1])
		pre := false
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					out[mod] = append(out[mod], normalise(w))
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.softdep: %w", err)
	}
	return out, nil
}

// ParseAliases reads modules.alias ("alias <alias> <module>") and returns,
// per alias, the modules that provide it, in file order. Only exact
// aliases are kept (patterns such as "pci:v*" are skipped): soft
// dependencies name exact ones.
func ParseAliases(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "alias" || len(f) != 3 {
			return nil, fmt.Errorf("%w: modules.alias line %d", ErrSyntax, line)
		}
		if strings.ContainsAny(f[1], "*?[") {
			continue
		}
		a := normalise(f[1])
		out[a] = append(out[a], normalise(f[2]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.alias: %w", err)
	}
	return out, nil
}

func normalise(name string) string { return strings.ReplaceAll(name, "-", "_") }
