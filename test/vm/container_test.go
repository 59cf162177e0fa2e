package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestContainerInVM drives the gcs inside the VM the way a host does: it
// waits for the bridge, negotiates, hot-plugs a busybox layer (ext4 made
// by tar2ext4) as a SCSI disk and maps it with MappedVirtualDisk, combines
// it with a scratch into a container root, runs a container without stdio
// (one byte stream per virtio-serial port, and the bridge has it), checks
// its exit code and the file it wrote (read back by an external process
// whose exit code is the check), tears everything down in a host's order
// and powers the VM off through the bridge.
func TestContainerInVM(t *testing.T) {
	t.Parallel()
	requireImage(t)
	layerDir := filepath.Join(t.TempDir(), "busybox")
	if err := testutil.BusyboxRootfs(layerDir); err != nil {
		t.Fatal(err)
	}
	layer := SCSIDisk{ID: "layer0", Image: filepath.Join(t.TempDir(), "busybox.ext4"), Lun: 3, ReadOnly: true}
	if err := DirToExt4(layerDir, layer.Image); err != nil {
		t.Fatal(err)
	}

	if st, err := os.Stat(layer.Image); err == nil {
		t.Logf("busybox layer disk: %.1f MiB, initrd %.1f MiB", float64(st.Size())/(1<<20), float64(image.Size)/(1<<20))
	}
	v, c, ready := boot(t, Config{GCSArgs: GCSTestArgs})
	t.Logf("bridge ready %.2fs after qemu start", ready.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	q, err := v.DialQMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := FakeVMBusSCSI(ctx, c); err != nil {
		t.Fatal(err)
	}

	const layerPath = "/run/layers/busybox"
	start := time.Now()
	if err := AttachSCSI(ctx, q, c, layer, layerPath); err != nil {
		t.Fatal(err)
	}
	// The layer is the hot-plugged disk, mounted read-only.
	if err := RunShell(ctx, c, 0, `grep -q "^/dev/sd[a-z]* $1 ext4 ro[,]" /proc/mounts`, layerPath); err != nil {
		t.Fatalf("layer mount: %v", err)
	}

	id := fmt.Sprintf("vm%062x", time.Now().UnixNano())
	bundle := "/run/gcs/c/" + id
	rootfs, scratch := bundle+"/rootfs", bundle+"/scratch/"+id
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfs, Layers: []prot.Layer{{Path: layerPath}}, ScratchPath: scratch}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		t.Fatalf("combined layers: %v", err)
	}
	const greeting = "hello from a container in the utility VM"
	spec := testutil.Spec("sh", "-c", fmt.Sprintf("echo '%s' > /out && exit 7", greeting))
	// Hosts set the hostname; an empty one means the UVM's, and nothing
	// sets that here (the kernel's "(none)" is not a valid hostname).
	spec.Hostname = "vmtest"
	spec.Root.Path = rootfs
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratch, spec)); err != nil {
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
	t.Logf("layer plugged to container exited: %.2fs", time.Since(start).Seconds())

	// The container's write is in its root (the overlay's upper dir in
	// the scratch). A wrong expectation must fail: the check is real.
	out := rootfs + "/out"
	if err := RunShell(ctx, c, 0, `grep -qxF "$1" "$2"`, greeting, out); err != nil {
		t.Fatalf("container output: %v", err)
	}
	if err := RunShell(ctx, c, 1, `grep -qxF "$1" "$2"`, "something else", out); err != nil {
		t.Fatalf("negative control: %v", err)
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
	if err := DetachSCSI(ctx, q, c, layer, layerPath); err != nil {
		t.Fatal(err)
	}
	if err := RunShell(ctx, c, 0, `! grep -q " $1 " /proc/mounts && ! ls /sys/bus/scsi/devices/*:0:0:3 2>/dev/null`, layerPath); err != nil {
		t.Fatalf("disk still mounted or present after detach: %v", err)
	}
	powerOff(t, v, c)
}
