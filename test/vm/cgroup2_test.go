package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cgroupTestsMount is where the cgroup test disk is mounted in the guest.
const cgroupTestsMount = "/run/cgroup-tests"

// cgroupE2ERun are the e2e tests that touch cgroups and need no pod
// networking (whose fixtures need host tools the image lacks).
const cgroupE2ERun = `^(TestStartupCgroupLayout|TestPodCgroups|TestPodCgroupFollowsLastMember|TestFailedCreateRollsBack|TestDeleteWithoutStartAndWhileRunning|TestStatisticsAndProcessList)$`

// mustPassInV2 are tests (and subtests) that must run and pass in the
// guest, whose /sys/fs/cgroup is a pure cgroup2 mount: the memory paths of
// the cgroup package, which cannot run on a hybrid host whose memory
// controller belongs to v1, and the e2e checks above.
var mustPassInV2 = map[string][]string{
	"cgroup": {"TestLayout/v2", "TestOOMEvent/v2", "TestThresholdEvent/v2", "TestUpdate/v2", "TestStats/v2"},
	"e2e":    {"TestStartupCgroupLayout", "TestPodCgroups", "TestPodCgroupFollowsLastMember", "TestFailedCreateRollsBack", "TestDeleteWithoutStartAndWhileRunning", "TestStatisticsAndProcessList"},
}

// runCgroupTest runs test binary $1 from the test disk with its output on
// the test port between section markers, in a stand-in repository (go.mod,
// bin/gcs and bin/runc: what the e2e tests look for) under /tmp: the gcs
// they start mounts a tmpfs of its own on /run, which hides the test disk.
const runCgroupTest = `port=
for n in /sys/class/virtio-ports/*/name; do
	[ "$(cat "$n")" = ` + TestOutPortName + ` ] && port=/dev/$(basename "$(dirname "$n")")
done
[ -n "$port" ] || exit 125
exec >"$port" 2>&1
name=$1
shift
echo "=== opengcs-vm-test $name begin"
repo=/tmp/opengcs-vm-repo
mkdir -p $repo/bin && echo "module opengcs.vmtests" >$repo/go.mod &&
	ln -sf /bin/gcs $repo/bin/gcs && ln -sf /bin/runc $repo/bin/runc && cd $repo || exit 124
` + cgroupTestsMount + `/tests/$name.test -test.v -test.count=1 -test.timeout=400s "$@"
rc=$?
echo "=== opengcs-vm-test $name end $rc"
exit $rc
`

// buildCgroupTestDisk compiles the cgroup package's and the e2e tests as
// static binaries and writes an ext4 image at dst holding them and
// util-linux's unshare (the gcs test harness needs --kill-child, which
// busybox's lacks). unshare runs on the image's own loader and libc
// (RunsOnImage checks that).
func buildCgroupTestDisk(repo, work, dst string) error {
	tree := filepath.Join(work, "cgroup-tests")
	for _, d := range []string{"tests", "bin"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
	}
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-o", filepath.Join(tree, "tests")+"/", "./internal/cgroup", "./test/e2e")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c: %w\n%s", err, out)
	}
	prog, err := exec.LookPath("unshare")
	if err != nil {
		return err
	}
	if err := RunsOnImage(prog); err != nil {
		return err
	}
	if err := copyFile(prog, filepath.Join(tree, "bin", "unshare"), 0o755); err != nil {
		return err
	}
	return DirToExt4(tree, dst)
}

// TestCgroupV2InVM runs the cgroup package's tests and the cgroup checks of
// the e2e suite inside the VM, whose kernel mounts a pure cgroup v2
// hierarchy (this machine is hybrid). The binaries run as external
// processes through the bridge, from a SCSI disk mapped with
// MappedVirtualDisk; the e2e tests start their own gcs in private
// namespaces next to the VM's. Any failure or skipped test fails.
func TestCgroupV2InVM(t *testing.T) {
	t.Parallel()
	requireImage(t)
	work := t.TempDir()
	disk := SCSIDisk{ID: "cgrouptests", Image: filepath.Join(work, "cgroup-tests.ext4"), Lun: 6, ReadOnly: true}
	if err := buildCgroupTestDisk(repoRoot, work, disk.Image); err != nil {
		t.Fatal(err)
	}
	v, c, _ := boot(t, Config{GCSArgs: GCSTestArgs, TestOut: true, MemoryMB: 1024})
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(v.TestOut)
			t.Logf("--- test output port ---\n%s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Second)
	defer cancel()
	q, err := v.DialQMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := FakeVMBusSCSI(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := AttachSCSI(ctx, q, c, disk, cgroupTestsMount); err != nil {
		t.Fatal(err)
	}
	// The point of running here: the guest's root hierarchy is cgroup2.
	if err := RunShell(ctx, c, 0, `grep -q "^cgroup2 /sys/fs/cgroup cgroup2 " /proc/mounts && ! grep -q " cgroup " /proc/mounts`); err != nil {
		t.Fatalf("the guest does not mount pure cgroup v2 at /sys/fs/cgroup: %v", err)
	}
	// The guest kernel's hostname is "(none)", which is not what these
	// tests are about (the gcs's handling of it is tested in test/e2e);
	// give the VM a plain one.
	if err := RunShell(ctx, c, 0, `hostname opengcs-vm`); err != nil {
		t.Fatal(err)
	}
	// Temporary directories go to the image's /tmp, outside /run (see
	// runCgroupTest).
	env := map[string]string{"PATH": cgroupTestsMount + "/bin:" + GuestPath, "TMPDIR": "/tmp"}
	runs := []struct {
		name string
		args []string
	}{
		{"cgroup", nil},
		{"e2e", []string{"-test.run", cgroupE2ERun}},
	}
	codes := map[string]uint32{}
	for _, r := range runs {
		start := time.Now()
		code, err := RunExternal(ctx, c, env, append([]string{"/bin/sh", "-c", runCgroupTest, "sh", r.name}, r.args...)...)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		codes[r.name] = code
		t.Logf("%s.test in the VM: exit %d, %.1fs", r.name, code, time.Since(start).Seconds())
	}
	// Nothing of the tests is left: no test cgroup below the root.
	if err := RunShell(ctx, c, 0, `! ls -d /sys/fs/cgroup/opengcs-test-* 2>/dev/null`); err != nil {
		t.Errorf("left behind by the cgroup tests: %v", err)
	}
	if err := DetachSCSI(ctx, q, c, disk, cgroupTestsMount); err != nil {
		t.Fatal(err)
	}
	powerOff(t, v, c)

	raw, err := os.ReadFile(v.TestOut)
	if err != nil {
		t.Fatal(err)
	}
	sections := Sections(string(raw))
	for _, r := range runs {
		out, ok := sections[r.name]
		if !ok {
			t.Errorf("%s: no output on the test port", r.name)
			continue
		}
		if codes[r.name] != 0 {
			t.Errorf("%s.test failed in the VM (exit %d):\n%s", r.name, codes[r.name], out)
			continue
		}
		if !strings.Contains(out, "\nPASS\n") {
			t.Errorf("%s: no PASS line:\n%s", r.name, out)
		}
		for _, m := range skipLine.FindAllStringSubmatch(out, -1) {
			t.Errorf("%s: %s skipped in the VM", r.name, m[1])
		}
		if strings.Contains(out, "has no memory controller") {
			t.Errorf("%s: a hierarchy without memory controller in the VM:\n%s", r.name, out)
		}
		for _, test := range mustPassInV2[r.name] {
			if !strings.Contains(out, "--- PASS: "+test+" ") {
				t.Errorf("%s: %s did not pass:\n%s", r.name, test, out)
			}
		}
	}
}
