package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Clean checks unsafe lexically and returns it as a clean path relative to
// a root ("." for the root itself). A ".." that would climb above the root,
// or a NUL byte, is an ErrEscapes error. A leading "/" is ignored.
func Clean(unsafe string) (string, error) {
	if strings.IndexByte(unsafe, 0) >= 0 {
		return "", fmt.Errorf("%q: %w (NUL byte)", unsafe, ErrEscapes)
	}
	depth := 0
	var parts []string
	for _, p := range strings.Split(unsafe, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			if depth == 0 {
				return "", fmt.Errorf("%q: %w", unsafe, ErrEscapes)
			}
			depth--
			parts = parts[:len(parts)-1]
		default:
			depth++
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// Join returns root joined with the untrusted path unsafe. Lexical escapes
// are rejected (ErrEscapes); symlinks that already exist below root are
// resolved as if root were the filesystem root, so the result always lies
// within root. Components that do not exist yet are appended as they are.
// root itself is trusted and is cleaned but not resolved.
func Join(root, unsafe string) (string, error) {
	rel, err := Clean(unsafe)
	if err != nil {
		return "", err
	}
	root = filepath.Clean(root)
	if rel == "." {
		return root, nil
	}
	p, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return "", fmt.Errorf("join %q onto %q: %w", unsafe, root, err)
	}
	if !Within(root, p) {
		// SecureJoin guarantees this; keep the check as a last line of defence.
		return "", fmt.Errorf("join %q onto %q gave %q: %w", unsafe, root, p, ErrEscapes)
	}
	return p, nil
}

// Within reports whether the clean absolute path p is root or lies below it
// (a purely lexical test).
func Within(root, p string) bool {
	root = filepath.Clean(root)
	p = filepath.Clean(p)
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// OpenFile opens the untrusted path unsafe below root for reading. Every
// component, including the last, is resolved inside root (symlinks
// included) without a window in which a concurrent rename or symlink swap
// could redirect the open outside root.
func OpenFile(root, unsafe string) (*os.File, error) {
	rel, err := Clean(unsafe)
	if err != nil {
		return nil, err
	}
	h, err := pathrs.OpenInRoot(root, rel)
	if err != nil {
		return nil, fmt.Errorf("open %q in %q: %w", unsafe, root, err)
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reopen %q in %q: %w", unsafe, root, err)
	}
	return f, nil
}

// MkdirAll joins unsafe onto root (see Join) and creates every missing
// directory of the result with exactly mode perm (the umask does not
// apply). root must exist; existing directories are left as they are. It
// returns the joined path.
func MkdirAll(root, unsafe string, perm fs.FileMode) (string, error) {
	p, err := Join(root, unsafe)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(filepath.Clean(root), p)
	if err != nil {
		return "", fmt.Errorf("mkdir %q: %w", p, err)
	}
	cur := filepath.Clean(root)
	if fi, err := os.Stat(cur); err != nil {
		return "", fmt.Errorf("mkdir under %q: %w", cur, err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("mkdir under %q: root is not a directory", cur)
	}
	if rel == "." {
		return p, nil
	}
	for _, c := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, c)
		if err := mkdirOne(cur, perm); err != nil {
			return "", err
		}
	}
	return p, nil
}

// mkdirOne creates the directory p with mode perm unless a directory is
// already there. It never follows a symlink at p.
func mkdirOne(p string, perm fs.FileMode) error {
	fi, err := os.Lstat(p)
	switch {
	case err == nil:
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %q: exists and is not a directory (%s)", p, fi.Mode().Type())
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("mkdir %q: %w", p, err)
	}
	if err := os.Mkdir(p, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return mkdirOne(p, perm)
		}
		return fmt.Errorf("mkdir %q: %w", p, err)
	}
	// Mkdir masks perm with the umask. Set the exact mode through a
	// descriptor opened with O_NOFOLLOW, so a symlink swapped in after the
	// Mkdir cannot redirect the chmod.
	fd, err := unix.Open(p, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new directory %q: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return fmt.Errorf("chmod %q: %w", p, err)
	}
	return nil
}
