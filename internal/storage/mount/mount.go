package mount

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxUnmounts bounds how many stacked mounts Unmount peels off one path.
const maxUnmounts = 5

// propagation maps the honoured propagation keywords to their mount flags.
var propagation = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// PropagationFlags returns the mount flags of the given propagation keyword.
func PropagationFlags(option string) (uintptr, error) {
	f, ok := propagation[option]
	if !ok {
		return 0, fmt.Errorf("%q: %w", option, ErrUnknownPropagation)
	}
	return f, nil
}

// IsPropagation reports whether option is a propagation keyword.
func IsPropagation(option string) bool {
	_, ok := propagation[option]
	return ok
}

// ApplyPropagation remounts target once for every propagation keyword in
// options, in order. Every other option is ignored.
func ApplyPropagation(target string, options []string) error {
	for _, o := range options {
		f, ok := propagation[o]
		if !ok {
			continue
		}
		if err := unix.Mount("", target, "", f, ""); err != nil {
			return fmt.Errorf("set propagation %q on %s: %w", o, target, err)
		}
	}
	return nil
}

// Unmount removes every mount stacked on target (at most a few). A target
// that does not exist or is not mounted is a success.
func Unmount(ctx context.Context, target string) error {
	if _, err := os.Lstat(target); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", target, err)
	}
	for range maxUnmounts {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		err := unix.Unmount(target, 0)
		if errors.Is(err, unix.EINVAL) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	mounted, err := IsMountPoint(target)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s after %d unmounts: %w", target, maxUnmounts, ErrStillMounted)
	}
	return nil
}

// UnmountAndRemove unmounts target (see Unmount) and then deletes it and
// everything below it. It refuses to delete through another mount: if any
// file system is still mounted below target it returns ErrMountsBelow and
// leaves the tree alone. A missing target is a success.
func UnmountAndRemove(ctx context.Context, target string) error {
	if err := Unmount(ctx, target); err != nil {
		return err
	}
	if err := RemoveAllNoMounts(target); err != nil {
		return err
	}
	return nil
}

// RemoveAllNoMounts deletes path recursively unless some file system is
// mounted at or below it.
func RemoveAllNoMounts(path string) error {
	below, err := MountsUnder(path)
	if err != nil {
		return err
	}
	if len(below) > 0 {
		return fmt.Errorf("remove %s (%s): %w", path, strings.Join(below, ", "), ErrMountsBelow)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// IsMountPoint reports whether path is the target of a mount in this
// process's mount namespace.
func IsMountPoint(path string) (bool, error) {
	abs, err := canonical(path)
	if err != nil {
		return false, err
	}
	points, err := mountPoints()
	if err != nil {
		return false, err
	}
	for _, p := range points {
		if p == abs {
			return true, nil
		}
	}
	return false, nil
}

// MountsUnder lists the mount points at or below path.
func MountsUnder(path string) ([]string, error) {
	abs, err := canonical(path)
	if err != nil {
		return nil, err
	}
	points, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range points {
		if p == abs || strings.HasPrefix(p, abs+"/") || abs == "/" {
			out = append(out, p)
		}
	}
	return out, nil
}

// canonical resolves symlinks in path as far as it exists, so it can be
// compared with mountinfo entries.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("absolute path of %s: %w", path, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return abs, nil
		}
		return "", fmt.Errorf("resolve %s: %w", abs, err)
	}
	return resolved, nil
}

// mountPoints returns the mount point field of every /proc/self/mountinfo
// line, unescaped.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("open mountinfo: %w", err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeOctal(fields[4]))
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs,
// newlines and backslashes in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
