package vm

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

// DirToExt4 writes the tree under src as an ext4 image at dst, the way a
// host makes a layer disk: a tar stream converted by hcsshim's tar2ext4.
// Regular files, directories and symlinks are carried with their modes,
// owned by root.
func DirToExt4(src, dst string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(src, pw)) }()
	f, err := os.Create(dst)
	if err != nil {
		pr.Close()
		return err
	}
	if err := tar2ext4.Convert(pr, f); err != nil {
		pr.CloseWithError(err)
		f.Close()
		return fmt.Errorf("tar2ext4 %s: %w", src, err)
	}
	pr.Close()
	return f.Close()
}

func writeTar(src string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", rel, err)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// StorageTestsMount is where the storage test disk is mounted in the guest
// (the wrappers on it name this path).
const StorageTestsMount = "/run/storage-tests"

// StoragePackages are the packages whose tests need kernel features this
// machine's kernel lacks (device-mapper); they run inside the VM.
var StoragePackages = []string{
	"./internal/storage/devicemapper",
	"./internal/storage/crypt",
	"./internal/storage/verity",
	"./internal/storage/pmem",
}

// e2fsTools are the e2fsprogs programs the storage tests call by name,
// with the argv[0] each is started under.
var e2fsTools = map[string]string{"mkfs.ext4": "/sbin/mke2fs", "dumpe2fs": "/sbin/dumpe2fs"}

// BuildStorageTestDisk compiles the StoragePackages' tests as static
// binaries (tests/<name>.test) and writes an ext4 disk image at dst that
// also carries the host's e2fsprogs with their shared libraries and
// loader, started through wrappers in bin/ (the image has no glibc).
func BuildStorageTestDisk(repo, work, dst string) ([]string, error) {
	tree := filepath.Join(work, "storage-tests")
	for _, d := range []string{"tests", "bin", "libexec", "lib"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return nil, err
		}
	}
	args := append([]string{"test", "-c", "-trimpath", "-o", filepath.Join(tree, "tests") + "/"}, StoragePackages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go test -c: %w\n%s", err, out)
	}
	var names []string
	for _, p := range StoragePackages {
		name := filepath.Base(p)
		if _, err := os.Stat(filepath.Join(tree, "tests", name+".test")); err != nil {
			return nil, fmt.Errorf("test binary of %s: %w", p, err)
		}
		names = append(names, name)
	}
	libs := map[string]bool{}
	for argv0, prog := range e2fsTools {
		if err := copyFile(prog, filepath.Join(tree, "libexec", filepath.Base(prog)), 0o755); err != nil {
			return nil, err
		}
		deps, err := sharedLibs(prog)
		if err != nil {
			return nil, err
		}
		for _, l := range deps {
			libs[l] = true
		}
		script := fmt.Sprintf("#!/bin/sh\nexec %[1]s/lib/ld-linux-x86-64.so.2 --library-path %[1]s/lib --argv0 %[2]s %[1]s/libexec/%[3]s \"$@\"\n",
			StorageTestsMount, argv0, filepath.Base(prog))
		if err := os.WriteFile(filepath.Join(tree, "bin", argv0), []byte(script), 0o755); err != nil {
			return nil, err
		}
	}
	for l := range libs {
		if err := copyFile(l, filepath.Join(tree, "lib", filepath.Base(l)), 0o755); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(tree, "lib", "ld-linux-x86-64.so.2")); err != nil {
		return nil, fmt.Errorf("no ELF loader among the libraries of %v: %w", e2fsTools, err)
	}
	sort.Strings(names)
	return names, DirToExt4(tree, dst)
}

var lddPath = regexp.MustCompile(`(/\S+)\s+\(0x`)

// sharedLibs lists the resolved paths of prog's shared libraries and its
// loader, as ldd prints them.
func sharedLibs(prog string) ([]string, error) {
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", prog, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		// The path ldd prints is the name the loader looks for (the
		// soname link); copyFile stores the content of its target.
		if m := lddPath.FindStringSubmatch(line); m != nil {
			libs = append(libs, m[1])
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s: no libraries found in %q", prog, out)
	}
	return libs, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src) // follows symlinks: the soname link gives the real library
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
