package vm

import (
	"bytes"
	"fmt"
	"io"
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

// Kernel is an installed Debian kernel of the image's flavour
// (initrd.KernelFlavour, the generic amd64 kernel).
type Kernel struct {
	Release    string // e.g. 6.1.0-57-amd64
	BzImage    string // /boot/vmlinuz-<release>
	ModulesDir string // /lib/modules/<release>
}

// FindKernel returns the newest installed kernel of initrd.KernelFlavour
// that has both a bzImage and modules.
func FindKernel() (Kernel, error) {
	dir := initrd.FindModulesDir(initrd.KernelFlavour)
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

// payloadFormats are the compressions a bzImage's kernel payload may
// have, each with the magic that starts it and the command that unpacks
// it from stdin. Debian's cloud kernel uses LZ4 (legacy frame), the
// generic one XZ.
var payloadFormats = []struct {
	name  string
	magic []byte
	cmd   []string
}{
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, []string{"xz", "-dc", "--single-stream"}},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}, []string{"lz4", "-dc"}},
	{"gzip", []byte{0x1f, 0x8b, 0x08}, []string{"gzip", "-dc"}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dc"}},
}

// ExtractVmlinux writes the uncompressed ELF vmlinux (bootable by QEMU
// through PVH, faster than the bzImage) to dst. It tries every place in
// the bzImage where a known compression's magic appears, in the order of
// payloadFormats, until one unpacks to an ELF file: the decompressors
// complain about the bzImage's trailing bytes, and a magic may also occur
// by chance, so the result is judged by its ELF magic, not the exit code.
func ExtractVmlinux(bzImage, dst string) error {
	raw, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("read %s: %w", bzImage, err)
	}
	var tried []string
	for _, pf := range payloadFormats {
		if _, err := exec.LookPath(pf.cmd[0]); err != nil {
			continue
		}
		for off, n := 0, 0; n < 4; n++ {
			i := bytes.Index(raw[off:], pf.magic)
			if i < 0 {
				break
			}
			off += i
			if err := unpackELF(raw[off:], pf.cmd, dst); err == nil {
				return nil
			} else {
				tried = append(tried, fmt.Sprintf("%s at %d: %v", pf.name, off, err))
			}
			off++
		}
	}
	os.Remove(dst)
	return fmt.Errorf("%w: no payload of %s unpacks to an ELF file (%s)", ErrNotELF, bzImage, strings.Join(tried, "; "))
}

// unpackELF runs the decompressor on payload into dst and checks that
// the result starts with the ELF magic.
func unpackELF(payload []byte, argv []string, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout = out
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if err := out.Close(); err != nil {
		return err
	}
	f, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte("\x7fELF")) {
		return fmt.Errorf("%w: %s said %v %q", ErrNotELF, argv[0], runErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}
