package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot returns the module root, found by walking up from the working
// directory to go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testutil: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testutil: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RuncBinary returns <repo>/bin/runc, building it like `make bin/runc` does
// when it is missing. It runs `go build` with exec.Cmd, so call it before
// starting a reaper.Reaper (for example in TestMain).
func RuncBinary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "runc")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "seccomp", "-o", p, "github.com/opencontainers/runc")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testutil: build runc: %w: %s", err, out)
	}
	return p, nil
}
