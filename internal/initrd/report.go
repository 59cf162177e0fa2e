package initrd

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
)

// Part is one component of an image and the bytes its files take
// unpacked (the initramfs stays in the guest's RAM).
type Part struct {
	Name  string
	Files int
	Bytes int64
}

// Parts breaks the tree built from l down into what each part costs:
// the opengcs binaries, runc, busybox, each host program with the
// libraries only it needs, the libraries and loader several programs
// share, the kernel modules, and the rest (configuration, links,
// directories, device nodes). Regular files count with their size,
// symlinks with their target's length.
func (l Layout) Parts(t *Tree) ([]Part, error) {
	owner := map[string]string{}
	for _, b := range []struct{ path, name string }{
		{"init", "init"}, {"bin/gcs", "gcs"}, {"bin/vsockexec", "vsockexec"},
		{"bin/runc", "runc"}, {"bin/busybox", "busybox"},
	} {
		owner[b.path] = b.name
	}
	users := map[string][]string{}
	for _, p := range l.Programs {
		src := p.Source
		if src == "" {
			src = "/" + p.Path
		}
		deps, err := l.Libs.Closure(src)
		if err != nil {
			return nil, err
		}
		name := path.Base(p.Path) + " with the libraries only it needs"
		owner[p.Path] = name
		for _, link := range p.Links {
			owner[strings.TrimPrefix(link, "/")] = name
		}
		for _, lib := range append(deps.Libs, deps.Interp) {
			if lib != "" {
				lib = strings.TrimPrefix(lib, "/")
				users[lib] = append(users[lib], name)
			}
		}
	}
	for lib, us := range users {
		if len(us) == 1 {
			owner[lib] = us[0]
		} else {
			owner[lib] = "libraries and loader shared by several programs"
		}
	}
	sums := map[string]*Part{}
	for _, p := range t.Paths() {
		e := t.entries[p]
		name := owner[p]
		switch {
		case name != "":
		case strings.HasPrefix(p, "lib/modules/"):
			name = "kernel modules"
		default:
			name = "configuration, links, directories"
		}
		if sums[name] == nil {
			sums[name] = &Part{Name: name}
		}
		s := sums[name]
		switch e.Mode & ModeTypeMask {
		case ModeRegular:
			s.Files++
			if e.Source != "" {
				st, err := os.Stat(e.Source)
				if err != nil {
					return nil, fmt.Errorf("%w: %s: %w", ErrMissingInput, p, err)
				}
				s.Bytes += st.Size()
			} else {
				s.Bytes += int64(len(e.Data))
			}
		case ModeSymlink:
			s.Bytes += int64(len(e.Target))
		}
	}
	out := make([]Part, 0, len(sums))
	for _, s := range sums {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// WriteParts prints parts as a table with a total line.
func WriteParts(w io.Writer, parts []Part) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "bytes\tfiles\t  part\n")
	var total int64
	var files int
	for _, p := range parts {
		fmt.Fprintf(tw, "%d\t%d\t  %s\n", p.Bytes, p.Files, p.Name)
		total += p.Bytes
		files += p.Files
	}
	fmt.Fprintf(tw, "%d\t%d\t  total unpacked\n", total, files)
	return tw.Flush()
}
