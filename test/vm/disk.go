package vm

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"

	"github.com/opengcs/opengcs/internal/initrd"
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

// StorageTestsMount is where the storage test disk is mounted in the guest.
const StorageTestsMount = "/run/storage-tests"

// StoragePackages are the packages whose tests need kernel features this
// machine's kernel lacks (device-mapper); they run inside the VM.
var StoragePackages = []string{
	"./internal/storage/devicemapper",
	"./internal/storage/crypt",
	"./internal/storage/verity",
	"./internal/storage/pmem",
}

// BuildStorageTestDisk compiles the StoragePackages' tests as static
// binaries (tests/<name>.test) and writes them as an ext4 disk image at
// dst. The e2fsprogs and xfsprogs programs they call are the image's own.
func BuildStorageTestDisk(repo, work, dst string) ([]string, error) {
	tree := filepath.Join(work, "storage-tests")
	if err := os.MkdirAll(filepath.Join(tree, "tests"), 0o755); err != nil {
		return nil, err
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
	sort.Strings(names)
	return names, DirToExt4(tree, dst)
}

// RunsOnImage checks that a dynamically linked program of this machine
// finds its loader and every library it needs in the VM image (those of
// initrd.HostPrograms), so a test disk can carry just the program.
func RunsOnImage(prog string) error {
	have := map[string]bool{}
	for _, p := range initrd.HostPrograms {
		src := p.Source
		if src == "" {
			src = "/" + p.Path
		}
		deps, err := initrd.LibResolver{}.Closure(src)
		if err != nil {
			return err
		}
		have[deps.Interp] = true
		for _, l := range deps.Libs {
			have[l] = true
		}
	}
	deps, err := initrd.LibResolver{}.Closure(prog)
	if err != nil {
		return err
	}
	for _, need := range append([]string{deps.Interp}, deps.Libs...) {
		if need != "" && !have[need] {
			return fmt.Errorf("%w: %s needs %s, which the image does not carry", ErrNotInImage, prog, need)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src) // follows symlinks
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
