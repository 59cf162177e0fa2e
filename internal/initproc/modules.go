package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/initrd/moddep"
)

// FirstModules are loaded by name before everything else when present,
// as the reference init does.
var FirstModules = []string{"hv_netvsc", "hv_sock", "bridge", "veth", "nf_conntrack", "br_netfilter"}

// InsertFunc inserts one module file into the kernel.
type InsertFunc func(f *os.File, compressed bool) error

// FinitModule is the real InsertFunc: finit_module(2).
func FinitModule(f *os.File, compressed bool) error {
	flags := 0
	if compressed {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	return unix.FinitModule(int(f.Fd()), "", flags)
}

// ModuleReport counts what LoadModules did.
type ModuleReport struct {
	Loaded, AlreadyLoaded int
	Failed                []string
}

// LoadModules loads every module listed in <dir>/modules.dep, each after its
// dependencies (FirstModules first). A directory without modules.dep means
// the image carries no modules. Failures are logged and counted, never fatal
// (docs/boot.md, "init (PID 1)": Kernel modules).
func (c *Config) LoadModules(dir string) (ModuleReport, error) {
	var rep ModuleReport
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("open modules.dep: %w", err)
	}
	deps, err := moddep.Parse(f)
	f.Close()
	if err != nil {
		return rep, err
	}
	var roots []string
	for _, n := range FirstModules {
		if _, ok := deps.Lookup(n); ok {
			roots = append(roots, n)
		}
	}
	roots = append(roots, deps.Files()...)
	order, err := deps.Order(roots...)
	if err != nil {
		return rep, err
	}
	insert := c.Insert
	if insert == nil {
		insert = FinitModule
	}
	for _, rel := range order {
		name := moddep.Name(rel)
		mf, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err == nil {
			err = insert(mf, strings.HasSuffix(rel, ".xz") || strings.HasSuffix(rel, ".zst") || strings.HasSuffix(rel, ".gz"))
			mf.Close()
		}
		switch {
		case err == nil:
			rep.Loaded++
		case errors.Is(err, unix.EEXIST):
			rep.AlreadyLoaded++
		default:
			rep.Failed = append(rep.Failed, name)
			c.Log.Warnf("load module %s: %v", name, err)
		}
	}
	return rep, nil
}
