package testutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// BusyboxPath is where Debian's busybox-static installs the static binary.
const BusyboxPath = "/bin/busybox"

// Applets returns the busybox applets BusyboxRootfs links into /bin. Any
// other applet is reachable as `/bin/busybox <name>`.
func Applets() []string {
	return []string{
		"sh", "cat", "echo", "sleep", "true", "false", "stty", "ls", "ps", "id",
		"env", "kill", "head", "tail", "tr", "wc", "mkdir", "rm", "grep", "sed",
		"printf", "test", "tty", "pwd", "hostname", "yes", "touch", "readlink",
	}
}

// BusyboxRootfs builds a minimal root filesystem in dir (created if needed):
// a copy of the static busybox with symlinks for Applets(), /etc/passwd and
// /etc/group with root and nobody, and empty /proc, /sys, /dev and /tmp.
func BusyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("testutil: rootfs: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("testutil: rootfs: %w", err)
	}
	if err := copyFile(BusyboxPath, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return fmt.Errorf("testutil: rootfs: %w (is busybox-static installed? see test/setup/deps.sh)", err)
	}
	for _, a := range Applets() {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return fmt.Errorf("testutil: rootfs: %w", err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("testutil: rootfs: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
