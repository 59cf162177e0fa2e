package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/storage/mount"
)

// Names of the entries inside a scratch directory.
const (
	upperDir  = "upper"
	workDir   = "work"
	bundleDir = "bundle"
)

const dirMode = 0o755

// UpperDir and WorkDir return the overlay upper and work directories that
// Mount uses for scratch.
func UpperDir(scratch string) string { return filepath.Join(scratch, upperDir) }

// WorkDir returns the overlay work directory used for scratch.
func WorkDir(scratch string) string { return filepath.Join(scratch, workDir) }

// BundleBacking returns the directory inside scratch that is bound onto the
// bundle when the scratch lives outside the bundle.
func BundleBacking(scratch string) string { return filepath.Join(scratch, bundleDir) }

// NeedsBundleBind reports whether Mount binds <scratch>/bundle onto the
// bundle (the parent of rootfs): true when scratch is set and not inside the
// bundle.
func NeedsBundleBind(scratch, rootfs string) bool {
	if scratch == "" {
		return false
	}
	rel, err := filepath.Rel(filepath.Dir(rootfs), scratch)
	if err != nil {
		return true
	}
	return rel == ".." || strings.HasPrefix(rel, "../")
}

// checkPath rejects paths that would break or escape the overlay option
// string.
func checkPath(what, p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, ",:\x00") {
		return fmt.Errorf("%s %q: %w", what, p, ErrBadPath)
	}
	return nil
}

// undo collects rollback steps and runs them in reverse.
type undo []func()

func (u *undo) add(f func()) { *u = append(*u, f) }

func (u undo) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// mkdirAll creates p like os.MkdirAll and registers the removal of the
// top-most directory it created.
func mkdirAll(u *undo, p string, perm os.FileMode) error {
	first := ""
	for d := p; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		first = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(p, perm); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if first != "" {
		u.add(func() { _ = os.RemoveAll(first) })
	}
	return nil
}

// Mount builds the container root file system at rootfs from layers
// (top-most first). With a non-empty scratch the union is writable and its
// upper and work directories live in scratch; without one it is mounted
// read-only. When scratch is outside the bundle (the parent of rootfs), the
// bundle is first bound onto <scratch>/bundle. Everything created is removed
// again if a step fails.
func Mount(log *logrus.Entry, layers []string, scratch, rootfs string) (err error) {
	if rootfs == "" {
		return ErrNoRootfs
	}
	if err := checkPath("container root path", rootfs); err != nil {
		return err
	}
	if len(layers) == 0 {
		return ErrNoLayers
	}
	for _, l := range layers {
		if err := checkPath("layer", l); err != nil {
			return err
		}
	}
	if scratch != "" {
		if err := checkPath("scratch", scratch); err != nil {
			return err
		}
	}
	log = log.WithFields(logrus.Fields{
		"rootfs": rootfs, "scratch": scratch, "layers": strings.Join(layers, ":"),
	})

	var u undo
	defer func() {
		if err != nil {
			u.run()
		}
	}()

	if NeedsBundleBind(scratch, rootfs) {
		bundle := filepath.Dir(rootfs)
		backing := BundleBacking(scratch)
		if err := mkdirAll(&u, backing, dirMode); err != nil {
			return fmt.Errorf("bundle backing: %w", err)
		}
		if err := mkdirAll(&u, bundle, dirMode); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if err := unix.Mount(backing, bundle, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s onto bundle %s: %w", backing, bundle, err)
		}
		u.add(func() {
			if err := unix.Unmount(bundle, unix.MNT_DETACH); err != nil {
				log.WithError(err).Warn("rollback: unmount bundle bind")
			}
		})
		log.WithField("bundle", bundle).Debug("bundle bound onto scratch")
	}

	opts := "lowerdir=" + strings.Join(layers, ":")
	var flags uintptr
	if scratch != "" {
		upper, work := UpperDir(scratch), WorkDir(scratch)
		if err := mkdirAll(&u, upper, dirMode); err != nil {
			return fmt.Errorf("overlay upper dir: %w", err)
		}
		if err := mkdirAll(&u, work, dirMode); err != nil {
			return fmt.Errorf("overlay work dir: %w", err)
		}
		opts += ",upperdir=" + upper + ",workdir=" + work
	} else {
		flags |= unix.MS_RDONLY
	}
	if err := mkdirAll(&u, rootfs, dirMode); err != nil {
		return fmt.Errorf("container root: %w", err)
	}
	if err := unix.Mount("overlay", rootfs, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mount overlay at %s (%s): %w", rootfs, opts, err)
	}
	log.Info("container root file system mounted")
	return nil
}

// Unmount unmounts the container root file system and removes its
// directory. A path that does not exist or is not mounted is a success.
func Unmount(ctx context.Context, rootfs string) error {
	if err := mount.UnmountAndRemove(ctx, rootfs); err != nil {
		return fmt.Errorf("remove container root: %w", err)
	}
	return nil
}

// UnbindBundle undoes the bundle-to-scratch bind that Mount made for the
// same scratch and rootfs, keeping the bundle directory. It does nothing when
// Mount would not have bound the bundle (so a scratch disk mounted directly
// on the bundle is never touched) or when the bind is already gone.
func UnbindBundle(log *logrus.Entry, scratch, rootfs string) error {
	if !NeedsBundleBind(scratch, rootfs) {
		return nil
	}
	bundle := filepath.Dir(rootfs)
	mounted, err := mount.IsMountPoint(bundle)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", bundle, err)
	}
	if !mounted {
		return nil
	}
	if err := unix.Unmount(bundle, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount bundle bind %s: %w", bundle, err)
	}
	log.WithField("bundle", bundle).Debug("bundle bind removed")
	return nil
}
