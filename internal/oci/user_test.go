package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www:x:33:34:www:/var/www:/usr/sbin/nologin
dup:x:1000:1000::/home/dup:/bin/sh
dup:x:1001:1001::/home/dup2:/bin/sh
twin1:x:2000:2001::/:/bin/sh
twin2:x:2000:2002::/:/bin/sh
huge:x:4294967296:0::/:/bin/sh
`

const testGroup = `root:x:0:
daemon:x:1:
web:x:34:www
staff:x:50:
dupg:x:60:
dupg:x:61:
hugeg:x:4294967296:
`

// makeRootfs creates a container rootfs with the given /etc/passwd and
// /etc/group contents ("" = file absent).
func makeRootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveUser(t *testing.T) {
	rootfs := makeRootfs(t, testPasswd, testGroup)
	tests := []struct {
		user     string
		uid, gid uint32
		wantErr  error
	}{
		{user: "root", uid: 0, gid: 0},
		{user: "www", uid: 33, gid: 34},
		{user: "33", uid: 33, gid: 34},
		{user: "0", uid: 0, gid: 0},
		{user: "www:staff", uid: 33, gid: 50},
		{user: "www:50", uid: 33, gid: 50},
		{user: "33:staff", uid: 33, gid: 50},
		{user: "33:7", uid: 33, gid: 7},
		{user: "www:777", uid: 33, gid: 777},
		{user: "5000", uid: 5000, gid: 0},          // unknown numeric uid: as is, gid 0
		{user: "5000:web", uid: 5000, gid: 34},     // unknown uid, named group
		{user: "5000:5001", uid: 5000, gid: 5001},  // both unknown
		{user: "4294967295", uid: 4294967295},      // max uint32
		{user: "2000", uid: 2000, gid: 0},          // uid shared by two entries: not unique, gid 0
		{user: "+33", uid: 33, gid: 34},            // strconv sign rules
		{user: "nobody", wantErr: ErrUserNotFound}, // names must exist
		{user: "www:nogroup", wantErr: ErrUserNotFound},
		{user: "33:nogroup", wantErr: ErrUserNotFound},
		{user: "dup", wantErr: ErrAmbiguousUser},
		{user: "www:dupg", wantErr: ErrAmbiguousUser},
		{user: "huge", wantErr: ErrIDOutOfRange},
		{user: "www:hugeg", wantErr: ErrIDOutOfRange},
		{user: "4294967296", wantErr: ErrIDOutOfRange},
		{user: "-1", wantErr: ErrIDOutOfRange},
		{user: "33:-1", wantErr: ErrIDOutOfRange},
		{user: "99999999999999999999999", wantErr: ErrIDOutOfRange},
		{user: "a:b:c", wantErr: ErrInvalidUser},
		{user: "", wantErr: ErrInvalidUser},
		{user: ":0", wantErr: ErrInvalidUser},
		{user: "0:", wantErr: ErrInvalidUser},
	}
	for _, tc := range tests {
		uid, gid, err := ResolveUser(rootfs, tc.user)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("ResolveUser(%q) = %d, %d, %v; want %v", tc.user, uid, gid, err, tc.wantErr)
			}
			continue
		}
		if err != nil || uid != tc.uid || gid != tc.gid {
			t.Errorf("ResolveUser(%q) = %d, %d, %v; want %d, %d", tc.user, uid, gid, err, tc.uid, tc.gid)
		}
	}
}

func TestResolveUserMissingFiles(t *testing.T) {
	rootfs := makeRootfs(t, "", "")
	tests := []struct {
		user     string
		uid, gid uint32
		wantErr  error
	}{
		{user: "1000", uid: 1000},
		{user: "1000:1000", uid: 1000, gid: 1000},
		{user: "root", wantErr: ErrUserNotFound},
		{user: "0:root", wantErr: ErrUserNotFound},
	}
	for _, tc := range tests {
		uid, gid, err := ResolveUser(rootfs, tc.user)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("ResolveUser(%q) = %v, want %v", tc.user, err, tc.wantErr)
			}
			continue
		}
		if err != nil || uid != tc.uid || gid != tc.gid {
			t.Errorf("ResolveUser(%q) = %d, %d, %v; want %d, %d", tc.user, uid, gid, err, tc.uid, tc.gid)
		}
	}
}

// TestResolveUserSymlinks makes the rootfs's /etc/passwd and /etc/group
// symlinks that point at files outside the rootfs: they must be resolved
// inside the rootfs and never read the outside files.
func TestResolveUserSymlinks(t *testing.T) {
	outside := t.TempDir()
	hostPasswd := filepath.Join(outside, "passwd")
	hostGroup := filepath.Join(outside, "group")
	if err := os.WriteFile(hostPasswd, []byte("hostonly:x:4242:4242::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostGroup, []byte("hostgrp:x:4343:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		passwd, group string // symlink targets
		inside        map[string]string
		user          string
		uid, gid      uint32
		wantErr       error
	}{
		{name: "absolute", passwd: hostPasswd, group: hostGroup, user: "hostonly", wantErr: ErrUserNotFound},
		{name: "relative climb", passwd: strings.Repeat("../", 20) + hostPasswd[1:], user: "hostonly", wantErr: ErrUserNotFound},
		{name: "group climb", passwd: "", group: strings.Repeat("../", 20) + hostGroup[1:], user: "0:hostgrp", wantErr: ErrUserNotFound},
		{
			// An absolute symlink that names a file inside the rootfs is
			// followed there, as the container would see it.
			name: "absolute inside", passwd: "/usr/lib/passwd",
			inside: map[string]string{"usr/lib/passwd": "app:x:7:8::/:/bin/sh\n"},
			user:   "app", uid: 7, gid: 8,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rootfs := makeRootfs(t, "", "")
			for p, c := range tc.inside {
				full := filepath.Join(rootfs, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.passwd != "" {
				if err := os.Symlink(tc.passwd, filepath.Join(rootfs, "etc", "passwd")); err != nil {
					t.Fatal(err)
				}
			}
			if tc.group != "" {
				if err := os.Symlink(tc.group, filepath.Join(rootfs, "etc", "group")); err != nil {
					t.Fatal(err)
				}
			}
			uid, gid, err := ResolveUser(rootfs, tc.user)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ResolveUser(%q) = %d, %d, %v; want %v", tc.user, uid, gid, err, tc.wantErr)
				}
				return
			}
			if err != nil || uid != tc.uid || gid != tc.gid {
				t.Fatalf("ResolveUser(%q) = %d, %d, %v; want %d, %d", tc.user, uid, gid, err, tc.uid, tc.gid)
			}
		})
	}
}

// FuzzParseUserString checks the user-string parser: no panics, at most
// one ':', non-empty parts, and parts that re-join to the input.
func FuzzParseUserString(f *testing.F) {
	for _, s := range []string{"root", "0", "www:staff", "33:34", "a:b:c", ":", "", "1:", ":1", "+1", "-1", "4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParseUserString(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidUser) {
				t.Fatalf("error %v does not wrap ErrInvalidUser", err)
			}
			return
		}
		if us.User == "" || strings.Contains(us.User, ":") || strings.Contains(us.Group, ":") {
			t.Fatalf("parts %+v of %q", us, s)
		}
		joined := us.User
		if us.HasGroup {
			if us.Group == "" {
				t.Fatalf("empty group accepted in %q", s)
			}
			joined += ":" + us.Group
		}
		if joined != s {
			t.Fatalf("parts %+v do not re-join to %q", us, s)
		}
		// Numeric parts are either in range or reported out of range.
		for _, p := range []string{us.User, us.Group} {
			id, numeric, err := parseID(p)
			if err != nil && (!numeric || !errors.Is(err, ErrIDOutOfRange)) {
				t.Fatalf("parseID(%q) = %d, %v, %v", p, id, numeric, err)
			}
		}
	})
}
