package safepath

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		escapes bool
	}{
		{in: "", want: "."},
		{in: "/", want: "."},
		{in: "a/b", want: "a/b"},
		{in: "/a//b/./c/", want: "a/b/c"},
		{in: "a/../b", want: "b"},
		{in: "a/b/../..", want: "."},
		{in: "..", escapes: true},
		{in: "../etc", escapes: true},
		{in: "../../etc", escapes: true},
		{in: "a/../../etc", escapes: true},
		{in: "/../etc", escapes: true},
		{in: "a/b/../../../c", escapes: true},
		{in: "a\x00b", escapes: true},
		{in: "..a/b..", want: "..a/b.."},
	}
	for _, tc := range tests {
		got, err := Clean(tc.in)
		if tc.escapes {
			if !errors.Is(err, ErrEscapes) {
				t.Errorf("Clean(%q) = %q, %v; want ErrEscapes", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestJoinSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mustMkdir(t, filepath.Join(root, "dir"))
	// An absolute symlink and a relative one that climbs: both stay in root.
	mustSymlink(t, "/etc", filepath.Join(root, "abs"))
	mustSymlink(t, "../../../../../"+outside, filepath.Join(root, "dir", "climb"))
	mustSymlink(t, "dir", filepath.Join(root, "rel"))

	tests := []struct {
		unsafe  string
		want    string
		escapes bool
	}{
		{unsafe: "x", want: filepath.Join(root, "x")},
		{unsafe: "/x/y", want: filepath.Join(root, "x/y")},
		{unsafe: "", want: root},
		{unsafe: "abs/passwd", want: filepath.Join(root, "etc/passwd")},
		{unsafe: "dir/climb/f", want: filepath.Join(root, outside, "f")},
		{unsafe: "rel/f", want: filepath.Join(root, "dir/f")},
		{unsafe: "../../etc", escapes: true},
		{unsafe: "dir/../../x", escapes: true},
	}
	for _, tc := range tests {
		got, err := Join(root, tc.unsafe)
		if tc.escapes {
			if !errors.Is(err, ErrEscapes) {
				t.Errorf("Join(%q) = %q, %v; want ErrEscapes", tc.unsafe, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Join(%q) = %q, %v; want %q", tc.unsafe, got, err, tc.want)
		}
		if err == nil && !Within(root, got) {
			t.Errorf("Join(%q) = %q is outside %q", tc.unsafe, got, root)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		root, p string
		want    bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/c", true},
		{"/a/b", "/a/bc", false},
		{"/a/b", "/a", false},
		{"/a/b/", "/a/b/../b/c", true},
		{"/", "/x", true},
	}
	for _, tc := range tests {
		if got := Within(tc.root, tc.p); got != tc.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tc.root, tc.p, got, tc.want)
		}
	}
}

func TestOpenFile(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(root, "etc"))
	if err := os.WriteFile(filepath.Join(root, "etc", "inside"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Symlinks that would point at the host's file if followed naively.
	mustSymlink(t, secret, filepath.Join(root, "etc", "abs"))
	mustSymlink(t, "../../../../../../../"+secret, filepath.Join(root, "etc", "rel"))
	mustSymlink(t, "/etc/inside", filepath.Join(root, "etc", "good"))

	tests := []struct {
		name    string
		want    string
		wantErr bool
	}{
		{name: "etc/inside", want: "inside"},
		{name: "/etc/good", want: "inside"},
		{name: "etc/abs", wantErr: true},
		{name: "etc/rel", wantErr: true},
		{name: "../" + secret, wantErr: true},
	}
	for _, tc := range tests {
		f, err := OpenFile(root, tc.name)
		if tc.wantErr {
			if err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				t.Errorf("OpenFile(%q) read %q; want an error", tc.name, b)
			}
			continue
		}
		if err != nil {
			t.Errorf("OpenFile(%q): %v", tc.name, err)
			continue
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != tc.want {
			t.Errorf("OpenFile(%q) read %q, %v; want %q", tc.name, b, err, tc.want)
		}
	}
}

func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mustSymlink(t, outside, filepath.Join(root, "link"))

	p, err := MkdirAll(root, "a/b/c", 0o777)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(root, "a/b/c") {
		t.Fatalf("MkdirAll returned %q", p)
	}
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o777 {
			t.Errorf("%s has mode %v, want 0777 regardless of umask", d, fi.Mode().Perm())
		}
	}
	// Existing directories keep their mode.
	if err := os.Chmod(filepath.Join(root, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := MkdirAll(root, "a/b/d", 0o777); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "a")); fi.Mode().Perm() != 0o700 {
		t.Errorf("existing dir mode changed to %v", fi.Mode().Perm())
	}
	// A symlink to the outside is followed inside root only.
	p, err = MkdirAll(root, "link/x", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if !Within(root, p) {
		t.Errorf("MkdirAll followed a symlink outside: %q", p)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("MkdirAll created %v outside its root", ents)
	}
	if _, err := MkdirAll(root, "../x", 0o755); !errors.Is(err, ErrEscapes) {
		t.Errorf("MkdirAll(../x) = %v, want ErrEscapes", err)
	}
	if _, err := MkdirAll(filepath.Join(root, "missing"), "x", 0o755); err == nil {
		t.Errorf("MkdirAll under a missing root succeeded")
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
