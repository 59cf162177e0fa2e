package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"

	"github.com/moby/sys/user"

	"github.com/opengcs/opengcs/internal/safepath"
)

// UserString is a parsed OCI image "user" string: name, uid, name:group,
// uid:gid, uid:group or name:gid.
type UserString struct {
	User     string // name or decimal id
	Group    string // name or decimal id; empty if HasGroup is false
	HasGroup bool
}

// ParseUserString splits s into its user and optional group parts. Both
// parts must be non-empty and s holds at most one ':'.
func ParseUserString(s string) (UserString, error) {
	u, g, hasGroup := strings.Cut(s, ":")
	if strings.Contains(g, ":") {
		return UserString{}, fmt.Errorf("%w %q: more than one ':'", ErrInvalidUser, s)
	}
	if u == "" || (hasGroup && g == "") {
		return UserString{}, fmt.Errorf("%w %q: empty user or group", ErrInvalidUser, s)
	}
	if strings.IndexByte(s, 0) >= 0 || strings.Contains(s, "\n") {
		return UserString{}, fmt.Errorf("%w %q: control character", ErrInvalidUser, s)
	}
	return UserString{User: u, Group: g, HasGroup: hasGroup}, nil
}

// parseID reports whether part is numeric ([+-]?[0-9]+) and, if so, its
// value; numeric values outside uint32 are ErrIDOutOfRange.
func parseID(part string) (id uint32, numeric bool, err error) {
	digits := strings.TrimLeft(part, "+-")
	if len(part)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(part, 10, 64)
	if err != nil || v < 0 || v > math.MaxUint32 {
		return 0, true, fmt.Errorf("%w: %s", ErrIDOutOfRange, part)
	}
	return uint32(v), true, nil
}

// ResolveUser resolves the user string s against <rootfs>/etc/passwd and
// <rootfs>/etc/group (docs/lifecycle.md, "User names"). A name must match
// exactly one entry (ErrUserNotFound, ErrAmbiguousUser); a numeric uid that
// does not match exactly one passwd entry is used as-is with gid 0, and a
// numeric gid that does not match exactly one group entry is used as-is.
// Without a group part the gid is the passwd entry's. The files are opened
// inside the rootfs (symlinks cannot leave it; see safepath.OpenFile); a
// missing file counts as having no entries.
func ResolveUser(rootfs, s string) (uid, gid uint32, err error) {
	us, err := ParseUserString(s)
	if err != nil {
		return 0, 0, err
	}
	id, numeric, err := parseID(us.User)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", s, err)
	}
	if numeric {
		uid = id
		users, err := readPasswd(rootfs, func(u user.User) bool { return u.Uid == int(id) })
		if err != nil {
			return 0, 0, err
		}
		if len(users) == 1 {
			if gid, err = checkedID(users[0].Gid); err != nil {
				return 0, 0, fmt.Errorf("user %q: passwd gid: %w", s, err)
			}
		}
	} else {
		users, err := readPasswd(rootfs, func(u user.User) bool { return u.Name == us.User })
		if err != nil {
			return 0, 0, err
		}
		if err := exactlyOne(len(users), "user", us.User); err != nil {
			return 0, 0, err
		}
		if uid, err = checkedID(users[0].Uid); err != nil {
			return 0, 0, fmt.Errorf("user %q: passwd uid: %w", s, err)
		}
		if gid, err = checkedID(users[0].Gid); err != nil {
			return 0, 0, fmt.Errorf("user %q: passwd gid: %w", s, err)
		}
	}
	if !us.HasGroup {
		return uid, gid, nil
	}

	id, numeric, err = parseID(us.Group)
	if err != nil {
		return 0, 0, fmt.Errorf("group %q: %w", s, err)
	}
	if numeric {
		return uid, id, nil
	}
	groups, err := readGroup(rootfs, func(g user.Group) bool { return g.Name == us.Group })
	if err != nil {
		return 0, 0, err
	}
	if err := exactlyOne(len(groups), "group", us.Group); err != nil {
		return 0, 0, err
	}
	if gid, err = checkedID(groups[0].Gid); err != nil {
		return 0, 0, fmt.Errorf("group %q: %w", us.Group, err)
	}
	return uid, gid, nil
}

func exactlyOne(n int, what, name string) error {
	switch {
	case n == 0:
		return fmt.Errorf("%s %q: %w", what, name, ErrUserNotFound)
	case n > 1:
		return fmt.Errorf("%s %q: %w (%d entries)", what, name, ErrAmbiguousUser, n)
	}
	return nil
}

func checkedID(v int) (uint32, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("%w: %d", ErrIDOutOfRange, v)
	}
	return uint32(v), nil
}

func readPasswd(rootfs string, filter func(user.User) bool) ([]user.User, error) {
	f, err := safepath.OpenFile(rootfs, "/etc/passwd")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read container /etc/passwd: %w", err)
	}
	defer f.Close()
	users, err := user.ParsePasswdFilter(f, filter)
	if err != nil {
		return nil, fmt.Errorf("parse container /etc/passwd: %w", err)
	}
	return users, nil
}

func readGroup(rootfs string, filter func(user.Group) bool) ([]user.Group, error) {
	f, err := safepath.OpenFile(rootfs, "/etc/group")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read container /etc/group: %w", err)
	}
	defer f.Close()
	groups, err := user.ParseGroupFilter(f, filter)
	if err != nil {
		return nil, fmt.Errorf("parse container /etc/group: %w", err)
	}
	return groups, nil
}
