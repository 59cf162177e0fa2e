package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runStorageTest runs one test binary from the test disk with -test.v
// (RunSection puts its output on the test-output port) and exits with the
// binary's status.
const runStorageTest = StorageTestsMount + `/tests/$1.test -test.v -test.count=1 -test.timeout=150s`

// mustPassInVM are tests that skip on a kernel without device-mapper;
// in the VM each must run and pass.
var mustPassInVM = map[string][]string{
	"devicemapper": {"TestLinearRoundTrip"},
	"crypt":        {"TestEncryptedScratchUnreadableAsPlain"},
	"pmem":         {"TestMultiMapped", "TestVerity"},
	"verity":       {"TestReadMatchesHostTooling"},
}

// TestStorageKernelTestsInVM runs the storage packages' tests that need
// device-mapper (absent from this machine's kernel) inside the VM, whose
// Debian kernel loads dm-mod, dm-verity, dm-crypt (and loop for their
// backing devices). The static test binaries come on a second SCSI disk
// mapped with MappedVirtualDisk; the e2fsprogs and xfsprogs they call are
// the image's. Each binary runs as an external process through the
// bridge. Any failure or skipped test fails.
func TestStorageKernelTestsInVM(t *testing.T) {
	t.Parallel()
	requireImage(t)
	work := t.TempDir()
	disk := SCSIDisk{ID: "storagetests", Image: filepath.Join(work, "storage-tests.ext4"), Lun: 5, ReadOnly: true}
	names, err := BuildStorageTestDisk(repoRoot, work, disk.Image)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(disk.Image); err == nil {
		t.Logf("storage test disk: %.1f MiB", float64(st.Size())/(1<<20))
	}
	v, c, _ := boot(t, Config{GCSArgs: GCSTestArgs, TestOut: true, MemoryMB: 512})
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(v.TestOut)
			t.Logf("--- test output port ---\n%s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	q, err := v.DialQMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := FakeVMBusSCSI(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := AttachSCSI(ctx, q, c, disk, StorageTestsMount); err != nil {
		t.Fatal(err)
	}
	// The guard the tests skip on must be open in the VM.
	if err := RunShell(ctx, c, 0, `grep -q " device-mapper$" /proc/misc`); err != nil {
		t.Fatalf("no device-mapper in the guest kernel: %v", err)
	}
	// The image mounts /tmp (and /run) nodev, as the reference does; the
	// tests make device nodes in their temporary directories, so they get
	// a tmpfs of their own.
	const tmp = "/run/storage-tests-tmp"
	if err := RunShell(ctx, c, 0, `mkdir -p "$1" && mount -t tmpfs -o mode=1777 tmpfs "$1"`, tmp); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PATH": GuestPath, "TMPDIR": tmp}
	// The image's dumpe2fs works (crypt's test relies on dumpe2fs failing
	// on ciphertext, which a broken dumpe2fs would fake): the test disk
	// itself reads as ext4.
	code, err := RunExternal(ctx, c, env, "/bin/sh", "-c",
		`dumpe2fs -h "$(awk -v m="$1" '$2 == m { print $1 }' /proc/mounts)" | grep -q "^Filesystem magic number: *0xEF53"`, "sh", StorageTestsMount)
	if err != nil || code != 0 {
		t.Fatalf("dumpe2fs on the test disk: exit %d, %v", code, err)
	}
	codes := map[string]uint32{}
	for _, name := range names {
		start := time.Now()
		code, err := RunSection(ctx, c, env, name, runStorageTest, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		codes[name] = code
		t.Logf("%s.test in the VM: exit %d, %.2fs", name, code, time.Since(start).Seconds())
	}
	// Every test cleans up: no loop or dm device may be left, and the
	// temporary tmpfs must unmount (nothing mounted below it).
	if err := RunShell(ctx, c, 0, `! grep -qs . /sys/block/loop*/loop/backing_file && ! ls /sys/block/dm-* 2>/dev/null && umount "$1"`, tmp); err != nil {
		t.Errorf("left behind by the storage tests: %v", err)
	}
	if err := DetachSCSI(ctx, q, c, disk, StorageTestsMount); err != nil {
		t.Fatal(err)
	}
	powerOff(t, v, c)

	// QEMU has exited, so the port's file is complete.
	raw, err := os.ReadFile(v.TestOut)
	if err != nil {
		t.Fatal(err)
	}
	sections := Sections(string(raw))
	for _, name := range names {
		out, ok := sections[name]
		if !ok {
			t.Errorf("%s: no output on the test port", name)
			continue
		}
		if codes[name] != 0 {
			t.Errorf("%s.test failed in the VM (exit %d):\n%s", name, codes[name], out)
			continue
		}
		if !strings.Contains(out, "\nPASS\n") {
			t.Errorf("%s: no PASS line:\n%s", name, out)
		}
		for _, m := range skipLine.FindAllStringSubmatch(out, -1) {
			t.Errorf("%s: %s skipped in the VM", name, m[1])
		}
		for _, test := range mustPassInVM[name] {
			if !strings.Contains(out, "--- PASS: "+test+" ") {
				t.Errorf("%s: %s did not pass:\n%s", name, test, out)
			}
		}
	}
}

var skipLine = regexp.MustCompile(`(?m)^\s*--- SKIP: (\S+)`)

func TestSplitSections(t *testing.T) {
	text := "noise\n=== opengcs-vm-test a begin\n--- PASS: X (0.00s)\nPASS\n=== opengcs-vm-test a end 0\n" +
		"=== opengcs-vm-test b begin\n    --- SKIP: Y/z (0.00s)\n=== opengcs-vm-test b end 0\n"
	got := Sections(text)
	if len(got) != 2 || !strings.Contains(got["a"], "--- PASS: X") || strings.Contains(got["a"], "SKIP") {
		t.Fatalf("sections: %q", got)
	}
	if m := skipLine.FindAllStringSubmatch(got["b"], -1); len(m) != 1 || m[0][1] != "Y/z" {
		t.Fatalf("skips in b: %q", m)
	}
	if _, ok := got["c"]; ok {
		t.Fatal(fmt.Sprint("phantom section c"))
	}
}
