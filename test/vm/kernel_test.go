package vm

import (
	"debug/elf"
	"path/filepath"
	"testing"
)

// TestExtractVmlinux checks that the image's kernel is the vmlinux
// unpacked from the installed bzImage (not the bzImage fallback): an
// x86-64 ELF with the PVH entry note QEMU boots it by.
func TestExtractVmlinux(t *testing.T) {
	img := requireImage(t)
	k, err := FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	if img.Kernel == k.BzImage {
		if err := ExtractVmlinux(k.BzImage, filepath.Join(t.TempDir(), "vmlinux")); err != nil {
			t.Fatalf("the VMs boot the bzImage: %v", err)
		}
		t.Fatal("the VMs boot the bzImage although extraction works now")
	}
	f, err := elf.Open(img.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("machine %v", f.Machine)
	}
	pvh := false
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		pvh = pvh || hasNote(b, "Xen", 18) // XEN_ELFNOTE_PHYS32_ENTRY
	}
	if !pvh {
		t.Error("no PVH entry note: QEMU would not boot this vmlinux directly")
	}
}

// hasNote reports whether the ELF note segment b holds a note of the given
// owner and type.
func hasNote(b []byte, owner string, typ uint32) bool {
	le := func(x []byte) uint32 { return uint32(x[0]) | uint32(x[1])<<8 | uint32(x[2])<<16 | uint32(x[3])<<24 }
	align := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for len(b) >= 12 {
		nsz, dsz, ty := le(b), le(b[4:]), le(b[8:])
		if uint32(len(b)) < 12+align(nsz)+align(dsz) {
			return false
		}
		name := string(b[12 : 12+nsz])
		if ty == typ && len(name) > 0 && name[:len(name)-1] == owner {
			return true
		}
		b = b[12+align(nsz)+align(dsz):]
	}
	return false
}
