package moddep

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const sample = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko
kernel/lib/reed_solomon/reed_solomon.ko:
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko kernel/lib/reed_solomon/reed_solomon.ko
`

func names(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, Name(f))
	}
	return out
}

func TestOrder(t *testing.T) {
	d, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		roots []string
		want  []string
	}{
		{[]string{"virtio_console"}, []string{"virtio", "virtio_ring", "virtio_console"}},
		{[]string{"virtio_pci", "virtio_console"}, []string{"virtio", "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_console"}},
		{[]string{"dm-verity"}, []string{"reed_solomon", "dm_mod", "dm_bufio", "dm_verity"}},
		{[]string{"dm_mod", "dm_verity", "dm-mod"}, []string{"dm_mod", "reed_solomon", "dm_bufio", "dm_verity"}},
	}
	for _, tc := range tests {
		got, err := d.Order(tc.roots...)
		if err != nil {
			t.Fatalf("Order(%v): %v", tc.roots, err)
		}
		if !reflect.DeepEqual(names(got), tc.want) {
			t.Errorf("Order(%v) = %v, want %v", tc.roots, names(got), tc.want)
		}
	}
}

func TestOrderErrors(t *testing.T) {
	tests := []struct {
		dep  string
		root string
		want error
	}{
		{sample, "nope", ErrUnknownModule},
		{"a.ko: b.ko\n", "a", ErrUnknownModule},
		{"a.ko: b.ko\nb.ko: a.ko\n", "a", ErrCycle},
	}
	for _, tc := range tests {
		d, err := Parse(strings.NewReader(tc.dep))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Order(tc.root); !errors.Is(err, tc.want) {
			t.Errorf("Order(%q) on %q: err %v, want %v", tc.root, tc.dep, err, tc.want)
		}
	}
	if _, err := Parse(strings.NewReader("no colon here\n")); !errors.Is(err, ErrSyntax) {
		t.Errorf("Parse without colon: %v, want ErrSyntax", err)
	}
}

func TestSubsetRoundTrip(t *testing.T) {
	d, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	files, err := d.Order("dm_verity", "virtio_console")
	if err != nil {
		t.Fatal(err)
	}
	text, err := d.Subset(files)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Parse(strings.NewReader(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d2.Files(), sortedCopy(files)) {
		t.Errorf("subset files %v, want %v", d2.Files(), files)
	}
	got, err := d2.Order(d2.Files()...)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, f := range got {
		pos[f] = i
	}
	for _, f := range got {
		deps := d2.deps[f]
		for _, dep := range deps {
			if pos[dep] > pos[f] {
				t.Errorf("%s loaded before its dependency %s", f, dep)
			}
		}
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// TestInstalledKernel resolves the image's module set against the real
// modules.dep of every installed kernel.
func TestInstalledKernel(t *testing.T) {
	deps, _ := filepath.Glob("/lib/modules/*/modules.dep")
	if len(deps) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no /lib/modules/*/modules.dep; test/setup/deps.sh installs linux-image-amd64")
		}
		t.Skip("no installed kernel modules")
	}
	for _, p := range deps {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		order, err := d.Order("virtio_pci", "virtio_console", "virtio_scsi", "overlay", "dm_verity")
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		got := strings.Join(names(order), " ")
		for _, want := range []string{"virtio_ring", "virtio_pci", "scsi_mod", "virtio_scsi", "overlay", "dm_mod", "dm_verity"} {
			if !strings.Contains(" "+got+" ", " "+want+" ") {
				t.Errorf("%s: order %q lacks %s", p, got, want)
			}
		}
		if strings.Index(got, "scsi_mod") > strings.Index(got, "virtio_scsi") {
			t.Errorf("%s: scsi_mod after virtio_scsi in %q", p, got)
		}
	}
}

func TestSoftdepsAndAliases(t *testing.T) {
	soft, err := ParseSoftdeps(strings.NewReader("# comment\nsoftdep ext4 pre: crypto-crc32c\nsoftdep libcrc32c pre: crc32c\nsoftdep cifs gcm\nsoftdep x pre: a b post: c\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"ext4": {"crypto_crc32c"}, "libcrc32c": {"crc32c"}, "x": {"a", "b"}}
	if !reflect.DeepEqual(soft, want) {
		t.Errorf("softdeps %v, want %v", soft, want)
	}
	aliases, err := ParseAliases(strings.NewReader("alias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\nalias pci:v*d* virtio_pci\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := aliases["crypto_crc32c"]; !reflect.DeepEqual(got, []string{"crc32c_intel", "crc32c_generic"}) {
		t.Errorf("aliases of crypto-crc32c: %v", got)
	}
	if len(aliases) != 1 {
		t.Errorf("pattern alias kept: %v", aliases)
	}
	for _, bad := range []struct {
		name  string
		parse func(string) error
	}{
		{"softdep keyword", func(s string) error { _, err := ParseSoftdeps(strings.NewReader(s)); return err }},
		{"alias fields", func(s string) error { _, err := ParseAliases(strings.NewReader(s)); return err }},
	} {
		if err := bad.parse("options foo bar=1\n"); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: %v, want ErrSyntax", bad.name, err)
		}
	}
}

func TestAddDepOrdersFirst(t *testing.T) {
	d, err := Parse(strings.NewReader("kernel/fs/ext4.ko: kernel/fs/jbd2.ko\nkernel/fs/jbd2.ko:\nkernel/crypto/crc32c_generic.ko:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddDep("kernel/fs/ext4.ko", "kernel/crypto/crc32c_generic.ko"); err != nil {
		t.Fatal(err)
	}
	if err := d.AddDep("kernel/fs/ext4.ko", "kernel/crypto/crc32c_generic.ko"); err != nil {
		t.Fatal(err) // twice is fine
	}
	order, err := d.Order("ext4")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/crypto/crc32c_generic.ko", "kernel/fs/jbd2.ko", "kernel/fs/ext4.ko"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	sub, err := d.Subset(order)
	if err != nil || !strings.Contains(string(sub), "kernel/fs/ext4.ko: kernel/fs/jbd2.ko kernel/crypto/crc32c_generic.ko\n") {
		t.Errorf("subset %q, %v", sub, err)
	}
	if err := d.AddDep("kernel/fs/ext4.ko", "kernel/nope.ko"); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("unknown dependency: %v", err)
	}
	if err := d.AddDep("kernel/nope.ko", "kernel/fs/ext4.ko"); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("unknown module: %v", err)
	}
}
