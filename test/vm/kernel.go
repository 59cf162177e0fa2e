package vm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opengcs/opengcs/internal/initrd"
)

// QEMU and firmware paths.
const (
	QEMUBinary = "qemu-system-x86_64"
	QbootROM   = "/usr/share/qemu/qboot.rom"
)

// Kernel is an installed Debian cloud kernel.
type Kernel struct {
	Release    string // e.g. 6.1.0-48-cloud-amd64
	BzImage    string // /boot/vmlinuz-<release>
	ModulesDir string // /lib/modules/<release>
}

// FindKernel returns the newest installed *-cloud-amd64 kernel that has
// both a bzImage and modules.
func FindKernel() (Kernel, error) {
	dir := initrd.FindModulesDir("-cloud-amd64")
	if dir == "" {
		return Kernel{}, ErrNoKernel
	}
	rel := filepath.Base(dir)
	bz := "/boot/vmlinuz-" + rel
	if _, err := os.Stat(bz); err != nil {
		return Kernel{}, fmt.Errorf("%w: %w", ErrNoKernel, err)
	}
	return Kernel{Release: rel, BzImage: bz, ModulesDir: dir}, nil
}

// CheckQEMU reports whether QEMU and qboot are installed.
func CheckQEMU() error {
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		return fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	if _, err := os.Stat(QbootROM); err != nil {
		return fmt.Errorf("%w: %w", ErrNoQEMU, err)
	}
	return nil
}

// lz4Magic starts an LZ4 legacy frame, the compression Debian uses for
// the kernel payload inside the bzImage.
var lz4Magic = []byte{0x02, 0x21, 0x4c, 0x18}

// ExtractVmlinux writes the uncompressed ELF vmlinux (bootable by QEMU
// through PVH, faster than the bzImage) to dst. lz4 exits non-zero because
// of the bzImage's trailing bytes, so the result is judged by its ELF
// magic, not the exit code.
func ExtractVmlinux(bzImage, dst string) error {
	raw, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("read %s: %w", bzImage, err)
	}
	off := bytes.Index(raw, lz4Magic)
	if off < 0 {
		return fmt.Errorf("%w: no LZ4 payload in %s", ErrNotELF, bzImage)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd := exec.Command("lz4", "-dc")
	cmd.Stdin = bytes.NewReader(raw[off:])
	cmd.Stdout = out
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if err := out.Close(); err != nil {
		return err
	}
	head := make([]byte, 4)
	f, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Read(head); err != nil || !bytes.Equal(head, []byte("\x7fELF")) {
		return fmt.Errorf("%w: lz4 said %v %q", ErrNotELF, runErr, stderr.String())
	}
	return nil
}
