package vm

import (
	"context"
	"fmt"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// GCSTestArgs are the gcs flags the VM tests add to the host's command
// line (InitArgs): only -disable-time-sync, because QEMU has no Hyper-V
// PTP clock. This is the argument a host adds when its
// DisableLCOWTimeSyncService annotation is set (internal/uvm/create_lcow.go
// in hcsshim).
var GCSTestArgs = []string{"-disable-time-sync"}

// GuestPath is the PATH the tests give their own external processes.
const GuestPath = "/sbin:/usr/sbin:/bin:/usr/bin"

// HostPath is the PATH a Windows host gives every process it starts in
// the UVM (hcsshim's internal/cmd/cmd.go, Command for a Linux guest): the
// image's tools must be found through it.
const HostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// RunExternal runs argv in the utility VM (ExecuteProcess on the null
// container id) without stdio, and returns its exit code.
func RunExternal(ctx context.Context, c *hostclient.Client, env map[string]string, argv ...string) (uint32, error) {
	if env == nil {
		env = map[string]string{"PATH": GuestPath}
	}
	params := &prot.ProcessParameters{CommandArgs: argv, WorkingDirectory: "/", Environment: env}
	pid, err := c.ExecuteProcess(ctx, prot.NullContainerID, params, prot.ExecuteProcessVsockStdioRelaySettings{})
	if err != nil {
		return 0, fmt.Errorf("execute %q: %w", argv, err)
	}
	code, err := c.WaitForProcess(ctx, prot.NullContainerID, pid, prot.InfiniteWaitTimeout)
	if err != nil {
		return 0, fmt.Errorf("wait for %q: %w", argv, err)
	}
	return code, nil
}

// RunShell runs a busybox sh script in the utility VM and fails unless it
// exits with want.
func RunShell(ctx context.Context, c *hostclient.Client, want uint32, script string, args ...string) error {
	code, err := RunExternal(ctx, c, nil, append([]string{"/bin/sh", "-c", script, "sh"}, args...)...)
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("%w: sh -c %q %q exited %d, want %d", ErrGuestCommand, script, args, code, want)
	}
	return nil
}

// fakeVMBusScript makes the guest's /sys/bus show a VMBus device for SCSI
// controller 0 ($1, its GUID) that is the virtio-scsi controller: a
// second sysfs mount keeps the real tree reachable (its relative links
// resolve inside it), and a tmpfs over /sys/bus holds a link to each real
// bus plus vmbus/devices/<GUID> -> the virtio-scsi virtio device, whose
// host<N> entry is what the gcs looks for. The gcs runs with its default
// sysfs root, as on Hyper-V; the device, its sysfs delete file and
// /dev/sdX stay real.
const fakeVMBusScript = `set -eu
real=/run/opengcs-realsys
mkdir -p "$real"
mount -t sysfs sysfs "$real"
set -- "$1" "$real"/bus/virtio/drivers/virtio_scsi/virtio*
[ $# -eq 2 ] && [ -d "$2" ]
ls -d "$2"/host* >/dev/null
mount -t tmpfs -o mode=0755 opengcs-fakebus /sys/bus
for b in "$real"/bus/*; do ln -s "$b" /sys/bus/; done
mkdir -p /sys/bus/vmbus/devices
ln -s "$2" "/sys/bus/vmbus/devices/$1"
`

// FakeVMBusSCSI gives the guest the VMBus view of SCSI controller 0
// through the bridge (an external process, fakeVMBusScript). Under QEMU
// the disks sit behind one virtio-scsi controller instead of Hyper-V's
// VMBus SCSI controllers, so the gcs's lookup of
// /sys/bus/vmbus/devices/<controller 0 GUID>/host* is pointed at the
// virtio-scsi host. Only controller 0 exists.
func FakeVMBusSCSI(ctx context.Context, c *hostclient.Client) error {
	guid, err := scsi.ControllerGUID(0)
	if err != nil {
		return err
	}
	if err := RunShell(ctx, c, 0, fakeVMBusScript, guid); err != nil {
		return fmt.Errorf("fake VMBus sysfs: %w", err)
	}
	return nil
}

// AttachSCSI does what a host does to give the guest a disk: hot-plug it
// (QMP) and send MappedVirtualDisk Add for controller 0 and its LUN.
func AttachSCSI(ctx context.Context, q *QMP, c *hostclient.Client, d SCSIDisk, mountPath string) error {
	if err := q.HotplugSCSI(ctx, d); err != nil {
		return fmt.Errorf("hot-plug %s: %w", d.ID, err)
	}
	mvd := &prot.LCOWMappedVirtualDisk{MountPath: mountPath, Controller: 0, Lun: d.Lun, ReadOnly: d.ReadOnly}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, mvd); err != nil {
		_ = q.UnplugSCSI(ctx, d)
		return fmt.Errorf("MappedVirtualDisk add of %s at %s: %w", d.ID, mountPath, err)
	}
	return nil
}

// DetachSCSI undoes AttachSCSI in a host's order: MappedVirtualDisk
// Remove (unmount), SCSIDevice Remove (the guest deletes the device), then
// the QMP unplug, which completes once the guest has let go.
func DetachSCSI(ctx context.Context, q *QMP, c *hostclient.Client, d SCSIDisk, mountPath string) error {
	mvd := &prot.LCOWMappedVirtualDisk{MountPath: mountPath, Controller: 0, Lun: d.Lun, ReadOnly: d.ReadOnly}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, mvd); err != nil {
		return fmt.Errorf("MappedVirtualDisk remove of %s: %w", d.ID, err)
	}
	dev := &prot.SCSIDevice{Controller: 0, Lun: d.Lun}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceSCSIDevice, dev); err != nil {
		return fmt.Errorf("SCSIDevice remove of %s: %w", d.ID, err)
	}
	if err := q.UnplugSCSI(ctx, d); err != nil {
		return fmt.Errorf("unplug %s: %w", d.ID, err)
	}
	return nil
}
