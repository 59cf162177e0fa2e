package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// hostTools are the programs a host (or the gcs for it) runs in the UVM,
// each with the arguments that make it print its version and a piece of
// what it prints (docs/vm.md lists where each use comes from).
var hostTools = []struct {
	argv []string
	want string
}{
	{[]string{"mkfs.ext4", "-V"}, "mke2fs 1."},
	{[]string{"dumpe2fs", "-V"}, "dumpe2fs 1."},
	{[]string{"mkfs.xfs", "-V"}, "mkfs.xfs version "},
	{[]string{"chronyd", "-v"}, "chronyd (chrony) version "},
	{[]string{"runc", "--version"}, "runc version "},
	{[]string{"udhcpc", "--help"}, "BusyBox v"},
	{[]string{"sh", "--help"}, "BusyBox v"},
	{[]string{"ls", "--help"}, "BusyBox v"},
	{[]string{"test", "-d", "/"}, ""}, // prints nothing
}

// hostMkfsExt4 is the command line a host formats a scratch disk with
// (hcsshim's internal/lcow/scratch.go and common.go); the device follows.
var hostMkfsExt4 = []string{"mkfs.ext4", "-q", "-E", "lazy_itable_init=0,nodiscard", "-O", "^has_journal,sparse_super2,^resize_inode"}

// scsiMountPath is where a host maps its SCSI disks in the UVM
// (hcsshim's internal/guestpath/paths.go, LCOWGlobalScsiMountPrefixFmt).
func scsiMountPath(n int) string { return fmt.Sprintf("/run/mounts/scsi/m%d", n) }

// chronydScript starts the image's chronyd as the gcs does (as root, -n
// -f <conf>), with a configuration that has no time source, waits until
// it has written its pid file and dropped root to the _chrony user
// (uid 100 in the image's /etc/passwd), and stops it. A chronyd that
// cannot start (a missing library, user or directory) exits and fails the
// wait at once.
const chronydScript = `set -eu
conf=/tmp/opengcs-chronyd-test.conf
echo "makestep 0.1 -1" >"$conf"
chronyd -n -f "$conf" &
pid=$!
i=0
until [ -s /run/chrony/chronyd.pid ] && [ "$(awk '/^Uid:/ { print $2 }' /proc/$pid/status)" = 100 ]; do
	kill -0 "$pid"
	i=$((i + 1))
	[ "$i" -lt 600 ]
	sleep 0.1
done
[ "$(cat /run/chrony/chronyd.pid)" = "$pid" ]
kill "$pid"
wait "$pid" || true
rm -f "$conf"
`

// TestContainerInVM boots the image with the host's command line and
// checks, in one VM, what a host relies on:
//
//   - memory in use once the gcs is ready (logged as a figure);
//   - every tool the host runs in the UVM starts by name with the host's
//     PATH and prints its version; chronyd runs and drops root;
//   - the 9p modules (and the rest of the image's) are loaded;
//   - a blank hot-plugged disk, formatted with the host's exact mkfs.ext4
//     command line (as hcsshim's lcow.CreateScratch does it), is mapped
//     again as a container's scratch and used by a container through
//     CombinedLayers together with a busybox layer (ext4 by tar2ext4);
//     the container's write is read back from the disk image on the host;
//   - an encrypted scratch is formatted with mkfs.xfs and its content
//     is ciphertext on the disk.
//
// Processes run without stdio (virtio-serial gives the bridge one byte
// stream); output the test needs goes to the test output port and is read
// after power-off.
func TestContainerInVM(t *testing.T) {
	t.Parallel()
	img := requireImage(t)
	work := t.TempDir()
	layerDir := filepath.Join(work, "busybox")
	if err := testutil.BusyboxRootfs(layerDir); err != nil {
		t.Fatal(err)
	}
	layer := SCSIDisk{ID: "layer0", Image: filepath.Join(work, "busybox.ext4"), Lun: 3, ReadOnly: true}
	if err := DirToExt4(layerDir, layer.Image); err != nil {
		t.Fatal(err)
	}
	scratch := SCSIDisk{ID: "scratch0", Image: filepath.Join(work, "scratch.img"), Lun: 1}
	encrypted := SCSIDisk{ID: "encscratch0", Image: filepath.Join(work, "encrypted.img"), Lun: 2}
	// Sparse blank disks; xfs needs more than 300 MB.
	for _, d := range []struct {
		path string
		size int64
	}{{scratch.Image, 256 << 20}, {encrypted.Image, 320 << 20}} {
		if err := os.WriteFile(d.path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(d.path, d.size); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("initrd %.1f MiB", float64(img.Size)/(1<<20))

	v, c, ready := boot(t, Config{GCSArgs: GCSTestArgs, TestOut: true})
	t.Logf("bridge ready %.2fs after qemu start", ready.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	// First, before anything else runs: memory in use with the gcs ready.
	if code, err := RunSection(ctx, c, nil, "meminfo", MemInfoScript); err != nil || code != 0 {
		t.Fatalf("meminfo: exit %d, %v", code, err)
	}
	q, err := v.DialQMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := FakeVMBusSCSI(ctx, c); err != nil {
		t.Fatal(err)
	}
	hostEnv := map[string]string{"PATH": HostPath}

	t.Run("host tools", func(t *testing.T) {
		for _, tool := range hostTools {
			// As the host starts it: by name, with its PATH.
			if code, err := RunExternal(ctx, c, hostEnv, tool.argv...); err != nil || code != 0 {
				t.Errorf("%q: exit %d, %v", tool.argv, code, err)
			}
			if code, err := RunSection(ctx, c, hostEnv, "tool-"+tool.argv[0], `"$@"`, tool.argv...); err != nil || code != 0 {
				t.Errorf("%q with output: exit %d, %v", tool.argv, code, err)
			}
		}
	})
	t.Run("chronyd runs", func(t *testing.T) {
		if err := RunShell(ctx, c, 0, chronydScript); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("9p modules loaded", func(t *testing.T) {
		script := `for m in 9p 9pnet 9pnet_fd 9pnet_virtio; do grep -q "^$m " /proc/modules || exit 1; done; grep -qw 9p /proc/filesystems`
		if err := RunShell(ctx, c, 0, script); err != nil {
			t.Fatal(err)
		}
	})

	scratchUsed := false
	t.Run("host-formatted scratch used by a container", func(t *testing.T) {
		scratchContainer(ctx, t, q, c, layer, scratch, hostEnv)
		scratchUsed = !t.Failed()
	})
	marker := fmt.Sprintf("opengcs encrypted scratch marker %d", time.Now().UnixNano())
	t.Run("encrypted scratch formatted with mkfs.xfs", func(t *testing.T) {
		mvd := prot.LCOWMappedVirtualDisk{MountPath: scsiMountPath(3), Encrypted: true, EnsureFilesystem: true, Filesystem: "xfs"}
		if err := AttachSCSIAs(ctx, q, c, encrypted, mvd); err != nil {
			t.Fatal(err)
		}
		script := `grep -Eq "^/dev/(mapper/[^ ]+|dm-[0-9]+) $1 xfs rw[, ]" /proc/mounts && echo "$2" >"$1/marker" && sync`
		if err := RunShell(ctx, c, 0, script, mvd.MountPath, marker); err != nil {
			t.Errorf("encrypted scratch: %v", err)
		}
		if err := DetachSCSIAs(ctx, q, c, encrypted, mvd); err != nil {
			t.Fatal(err)
		}
	})
	powerOff(t, v, c)

	// QEMU has exited: the port's file and the disk images are complete.
	raw, err := os.ReadFile(v.TestOut)
	if err != nil {
		t.Fatal(err)
	}
	sections := Sections(string(raw))
	if used, err := MemoryInUse(sections["meminfo"]); err != nil {
		t.Error(err)
	} else {
		t.Logf("guest memory in use with the gcs ready (MemTotal - MemAvailable): %.1f MiB", float64(used)/(1<<20))
	}
	for _, tool := range hostTools {
		out := sections["tool-"+tool.argv[0]]
		if !strings.Contains(out, tool.want) {
			t.Errorf("%q printed %q, want %q in it", tool.argv, out, tool.want)
		}
	}
	if scratchUsed {
		// The gcs mounted the host's file system as it was.
		checkHostFormatted(t, scratch.Image)
	}
	enc, err := os.ReadFile(encrypted.Image)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte(marker)) || bytes.HasPrefix(enc, []byte("XFSB")) {
		t.Error("the encrypted scratch holds plain text")
	}
	if !bytes.ContainsFunc(enc, func(r rune) bool { return r != 0 }) {
		t.Error("nothing was written to the encrypted scratch")
	}
}

// scratchContainer does what a host does with a new container scratch:
// lcow.CreateScratch (hot-plug the blank disk, map it as a block device,
// run the host's mkfs.ext4 on it, release it), then, for the container,
// map it again with EnsureFilesystem as the scratch of CombinedLayers
// over the busybox layer. The container writes a file, which must land in
// the overlay's upper directory on that disk, and exits 7. Then the host's
// teardown (which removes the container's scratch directory).
func scratchContainer(ctx context.Context, t *testing.T, q *QMP, c *hostclient.Client, layer, scratch SCSIDisk, hostEnv map[string]string) {
	t.Helper()
	blockDev := prot.LCOWMappedVirtualDisk{MountPath: scsiMountPath(1), BlockDev: true}
	if err := AttachSCSIAs(ctx, q, c, scratch, blockDev); err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string(nil), hostMkfsExt4...), blockDev.MountPath)
	if code, err := RunExternal(ctx, c, hostEnv, argv...); err != nil || code != 0 {
		t.Fatalf("%q: exit %d, %v", argv, code, err)
	}
	if err := DetachSCSIAs(ctx, q, c, scratch, blockDev); err != nil {
		t.Fatal(err)
	}
	// QEMU has let go of the file (blockdev-del): read it on the host.
	checkHostFormatted(t, scratch.Image)

	const layerPath = "/run/layers/busybox"
	if err := AttachSCSI(ctx, q, c, layer, layerPath); err != nil {
		t.Fatal(err)
	}
	if err := RunShell(ctx, c, 0, `grep -q "^/dev/sd[a-z]* $1 ext4 ro[,]" /proc/mounts`, layerPath); err != nil {
		t.Fatalf("layer mount: %v", err)
	}
	scratchMount := prot.LCOWMappedVirtualDisk{MountPath: scsiMountPath(2), EnsureFilesystem: true, Filesystem: "ext4"}
	if err := AttachSCSIAs(ctx, q, c, scratch, scratchMount); err != nil {
		t.Fatal(err)
	}
	if err := RunShell(ctx, c, 0, `grep -q "^/dev/sd[a-z]* $1 ext4 rw[,]" /proc/mounts`, scratchMount.MountPath); err != nil {
		t.Fatalf("scratch mount: %v", err)
	}

	id := fmt.Sprintf("vm%062x", time.Now().UnixNano())
	bundle := "/run/gcs/c/" + id
	rootfs, scratchDir := bundle+"/rootfs", scratchMount.MountPath+"/scratch/"+id
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfs, Layers: []prot.Layer{{Path: layerPath}}, ScratchPath: scratchDir}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		t.Fatalf("combined layers: %v", err)
	}
	const greeting = "hello from a container in the utility VM"
	spec := testutil.Spec("sh", "-c", fmt.Sprintf("echo '%s' > /out && exit 7", greeting))
	// Hosts set the hostname; an empty one means the UVM's, and nothing
	// sets that here (the kernel's "(none)" is not a valid hostname).
	spec.Hostname = "vmtest"
	spec.Root.Path = rootfs
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratchDir, spec)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	pid, err := c.ExecuteProcess(ctx, id, &prot.ProcessParameters{}, prot.ExecuteProcessVsockStdioRelaySettings{})
	if err != nil {
		t.Fatalf("start container init: %v", err)
	}
	code, err := c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout)
	if err != nil || code != 7 {
		t.Fatalf("container exit: %d, %v; want 7", code, err)
	}
	select {
	case n := <-c.Notifications():
		if n.ContainerID != id {
			t.Fatalf("notification for %q, want %q", n.ContainerID, id)
		}
	case <-ctx.Done():
		t.Fatal("no exit notification")
	}
	// The write is in the container's root; a wrong expectation must
	// fail, so the check is real.
	out := rootfs + "/out"
	if err := RunShell(ctx, c, 0, `grep -qxF "$1" "$2"`, greeting, out); err != nil {
		t.Fatalf("container output: %v", err)
	}
	if err := RunShell(ctx, c, 1, `grep -qxF "$1" "$2"`, "something else", out); err != nil {
		t.Fatalf("negative control: %v", err)
	}
	if err := RunShell(ctx, c, 0, `grep -qxF "$1" "$2/upper/out"`, greeting, scratchDir); err != nil {
		t.Fatalf("the container's write is not in the upper directory on the scratch disk: %v", err)
	}

	// Teardown as a host does it.
	if err := c.Shutdown(ctx, id, false); err != nil {
		t.Fatalf("shutdown of the exited container: %v", err)
	}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs}); err != nil {
		t.Fatalf("combined layers remove: %v", err)
	}
	if err := c.DeleteContainerState(ctx, id); err != nil {
		t.Fatalf("delete container state: %v", err)
	}
	if err := DetachSCSIAs(ctx, q, c, scratch, scratchMount); err != nil {
		t.Fatal(err)
	}
	if err := DetachSCSI(ctx, q, c, layer, layerPath); err != nil {
		t.Fatal(err)
	}
	gone := `! grep -q " $1 " /proc/mounts && ! grep -q " $2 " /proc/mounts && ! ls /sys/bus/scsi/devices/*:0:0:3 /sys/bus/scsi/devices/*:0:0:1 2>/dev/null`
	if err := RunShell(ctx, c, 0, gone, layerPath, scratchMount.MountPath); err != nil {
		t.Fatalf("disk still mounted or present after detach: %v", err)
	}
}

// checkHostFormatted reads the scratch disk image on the host and checks
// the features the host's mkfs.ext4 arguments ask for: no journal, no
// resize inode, sparse_super2. The gcs's own formatting (mkfs.ext4 -q -F)
// would have a journal, so this also shows the gcs kept the host's file
// system.
func checkHostFormatted(t *testing.T, image string) {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", image).Output()
	if err != nil {
		t.Fatalf("dumpe2fs %s: %v", image, err)
	}
	var features []string
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(line, "Filesystem features:"); ok {
			features = strings.Fields(f)
		}
	}
	has := map[string]bool{}
	for _, f := range features {
		has[f] = true
	}
	if has["has_journal"] || has["resize_inode"] || !has["sparse_super2"] {
		t.Errorf("scratch features %v, want no has_journal, no resize_inode, sparse_super2", features)
	}
}
