package uvm

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExecutableInRootfs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "app", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(root, p), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/busybox", 0o755)
	write("app/run", 0o755)
	write("etc/passwd", 0o644)
	// An absolute symlink resolves inside the rootfs, not on the host.
	if err := os.Symlink("/bin/busybox", filepath.Join(root, "usr/bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "bin/notexec")); err != nil {
		t.Fatal(err)
	}
	path := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	for _, tc := range []struct {
		name string
		p    *specs.Process
		want bool
	}{
		{"absolute", &specs.Process{Args: []string{"/bin/busybox"}}, true},
		{"through PATH", &specs.Process{Args: []string{"busybox"}, Env: path}, true},
		{"symlink through PATH", &specs.Process{Args: []string{"sh"}, Env: path}, true},
		{"relative to cwd", &specs.Process{Args: []string{"./run"}, Cwd: "/app"}, true},
		{"missing", &specs.Process{Args: []string{"/no/such/binary"}}, false},
		{"not executable", &specs.Process{Args: []string{"/etc/passwd"}}, false},
		{"symlink to a non-executable", &specs.Process{Args: []string{"notexec"}, Env: path}, false},
		{"directory", &specs.Process{Args: []string{"/bin"}}, false},
		{"no PATH", &specs.Process{Args: []string{"busybox"}}, false},
		{"relative PATH entry", &specs.Process{Args: []string{"busybox"}, Env: []string{"PATH=bin"}}, false},
		{"escape", &specs.Process{Args: []string{"../../../../bin/sh"}, Cwd: "/app"}, false},
		{"no args", &specs.Process{}, false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := executableInRootfs(root, tc.p); got != tc.want {
				t.Fatalf("executableInRootfs(%+v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}
