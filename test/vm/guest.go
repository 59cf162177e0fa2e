package vm

import (
	"context"
	"fmt"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// FakeSysfsRoot is the gcs's -sysfs-root in the VM: a tmpfs tree of
// symlinks into the real /sys (see FakeVMBusSCSI).
const FakeSysfsRoot = "/run/opengcs-fakesys"

// GCSTestArgs are the gcs flags the VM tests add: no Hyper-V PTP clock
// under QEMU, and SCSI lookups through FakeSysfsRoot.
var GCSTestArgs = []string{"-disable-time-sync", "-sysfs-root", FakeSysfsRoot}

// GuestPath is the PATH external processes get.
const GuestPath = "/sbin:/usr/sbin:/bin:/usr/bin"

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

// fakeVMBusScript maps the VMBus GUID of SCSI controller 0 ($1) to the
// virtio-scsi controller's virtio device directory, whose host<N> entry is
// what the gcs looks for; bus/scsi is the real one.
const fakeVMBusScript = `set -eu
r=` + FakeSysfsRoot + `
set -- "$1" /sys/bus/virtio/drivers/virtio_scsi/virtio*
[ $# -eq 2 ] && [ -d "$2" ]
ls -d "$2"/host* >/dev/null
mkdir -p "$r/bus/vmbus/devices"
ln -s /sys/bus/scsi "$r/bus/scsi"
ln -s "$2" "$r/bus/vmbus/devices/$1"
`

// FakeVMBusSCSI builds FakeSysfsRoot in the guest through the bridge (an
// external process). Under QEMU the disks sit behind one virtio-scsi
// controller instead of Hyper-V's VMBus SCSI controllers, so the gcs's
// lookup of <sysfs>/bus/vmbus/devices/<controller 0 GUID>/host* is pointed
// at the virtio-scsi host. Only controller 0 exists.
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
