package vm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opengcs/opengcs/internal/initrd"
)

// Image is a built guest: kernel and initrd ready for QEMU.
type Image struct {
	Kernel  string // PVH vmlinux (or the bzImage when extraction failed)
	Initrd  string // uncompressed newc cpio
	Release string
	Size    int64 // initrd bytes
}

// TestModules are the modules of the test image: the production set
// without initrd.HyperVModules (hv_vmbus fails to load under QEMU, and
// the tests require every module to load).
var TestModules = initrd.PortableModules

// BuildImage compiles init, vsockexec and gcs from the module at repo
// (statically, CGO_ENABLED=0, with the Makefile's build tags, so the gcs
// carries the Rego enforcer as in the production image), and writes the initrd and the vmlinux into
// dir. runc is included when runcPath is not empty. The modules are
// TestModules; the host programs are the production image's
// (initrd.HostPrograms).
func BuildImage(repo, dir, runcPath string) (*Image, error) {
	k, err := FindKernel()
	if err != nil {
		return nil, err
	}
	bins := map[string]string{"init": "./cmd/init", "vsockexec": "./cmd/vsockexec", "gcs": "./cmd/gcs"}
	paths := map[string]string{}
	for name, pkg := range bins {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "rego", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		paths[name] = out
	}
	l := initrd.Layout{
		Init: paths["init"], GCS: paths["gcs"], VsockExec: paths["vsockexec"],
		Runc: runcPath, ModulesDir: k.ModulesDir, Modules: TestModules,
		Programs: initrd.HostPrograms,
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		l.Busybox = bb
		if l.BusyboxApplets, err = initrd.BusyboxApplets(bb); err != nil {
			return nil, err
		}
	}
	t, err := l.Build()
	if err != nil {
		return nil, err
	}
	img := &Image{Initrd: filepath.Join(dir, "initrd.cpio"), Release: k.Release}
	f, err := os.Create(img.Initrd)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := t.WriteCPIO(w); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	st, err := os.Stat(img.Initrd)
	if err != nil {
		return nil, err
	}
	img.Size = st.Size()
	img.Kernel = filepath.Join(dir, "vmlinux")
	if err := ExtractVmlinux(k.BzImage, img.Kernel); err != nil {
		img.Kernel = k.BzImage
	}
	return img, nil
}

// StaticRunc returns repo/bin/runc-static, building it (as `make
// runc-static` does: cgo, seccomp, fully static) into dir when it is
// missing. Containers in the VM need it.
func StaticRunc(repo, dir string) (string, error) {
	p := filepath.Join(repo, "bin", "runc-static")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p = filepath.Join(dir, "runc-static")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "seccomp netgo osusergo",
		"-ldflags", "-s -w -extldflags -static", "-o", p, "github.com/opencontainers/runc")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build static runc: %w\n%s", err, out)
	}
	return p, nil
}

// RepoRoot finds the module root (the directory with go.mod) above dir.
func RepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/opengcs/opengcs") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}
