package vm

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

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

// sectionScript runs the script $2 (with the arguments after it) with its
// stdout and stderr on the TestOutPortName port, between
// "=== opengcs-vm-test <$1> begin" and "... end <status>" lines, and
// exits with the script's status (125 when the port is missing). The
// port's file is complete once QEMU has exited (see Sections).
const sectionScript = `port=
for n in /sys/class/virtio-ports/*/name; do
	[ "$(cat "$n")" = ` + TestOutPortName + ` ] && port=/dev/$(basename "$(dirname "$n")")
done
[ -n "$port" ] || exit 125
exec >"$port" 2>&1
name=$1 script=$2
shift 2
echo "=== opengcs-vm-test $name begin"
sh -c "$script" sh "$@"
rc=$?
echo "=== opengcs-vm-test $name end $rc"
exit $rc
`

// RunSection runs a sh script in the utility VM whose output goes to the
// test output port as the section name (a VM started with
// Config.TestOut), and returns its exit code.
func RunSection(ctx context.Context, c *hostclient.Client, env map[string]string, name, script string, args ...string) (uint32, error) {
	return RunExternal(ctx, c, env, append([]string{"/bin/sh", "-c", sectionScript, "sh", name, script}, args...)...)
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
	return AttachSCSIAs(ctx, q, c, d, prot.LCOWMappedVirtualDisk{MountPath: mountPath, ReadOnly: d.ReadOnly})
}

// AttachSCSIAs is AttachSCSI with the mapping's options (BlockDev,
// Encrypted, EnsureFilesystem, ...) given; Controller and Lun are set from
// the disk.
func AttachSCSIAs(ctx context.Context, q *QMP, c *hostclient.Client, d SCSIDisk, mvd prot.LCOWMappedVirtualDisk) error {
	if err := q.HotplugSCSI(ctx, d); err != nil {
		return fmt.Errorf("hot-plug %s: %w", d.ID, err)
	}
	// Under TCG on a busy machine the guest kernel can take longer to scan
	// the new LUN than the 5 s the gcs waits for its device (the
	// reference's bound). The test waits for the kernel first, so that the
	// request measures the gcs and not the emulator's speed.
	if err := RunShell(ctx, c, 0, waitSCSIDiskScript, strconv.Itoa(int(d.Lun))); err != nil {
		_ = q.UnplugSCSI(ctx, d)
		return fmt.Errorf("guest never saw %s at LUN %d: %w", d.ID, d.Lun, err)
	}
	mvd.Controller, mvd.Lun = 0, d.Lun
	mountPath := mvd.MountPath
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, &mvd); err != nil {
		_ = q.UnplugSCSI(ctx, d)
		return fmt.Errorf("MappedVirtualDisk add of %s at %s: %w", d.ID, mountPath, err)
	}
	return nil
}

// waitSCSIDiskScript waits up to 120 s for the guest kernel to have a
// block device for target 0, LUN $1 of a SCSI host.
const waitSCSIDiskScript = `i=0
until ls /sys/class/scsi_disk/*:0:0:"$1"/device/block/* >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 1200 ] || exit 1
	sleep 0.1
done`

// DetachSCSI undoes AttachSCSI in a host's order: MappedVirtualDisk
// Remove (unmount), SCSIDevice Remove (the guest deletes the device), then
// the QMP unplug, which completes once the guest has let go.
func DetachSCSI(ctx context.Context, q *QMP, c *hostclient.Client, d SCSIDisk, mountPath string) error {
	return DetachSCSIAs(ctx, q, c, d, prot.LCOWMappedVirtualDisk{MountPath: mountPath, ReadOnly: d.ReadOnly})
}

// DetachSCSIAs undoes AttachSCSIAs (mvd as given there).
func DetachSCSIAs(ctx context.Context, q *QMP, c *hostclient.Client, d SCSIDisk, mvd prot.LCOWMappedVirtualDisk) error {
	mvd.Controller, mvd.Lun = 0, d.Lun
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &mvd); err != nil {
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

var sectionTag = regexp.MustCompile(`(?m)^=== opengcs-vm-test (\S+) (begin|end)\b.*$`)

// Sections cuts the test output port's text into the output of each
// RunSection, by name.
func Sections(s string) map[string]string {
	out := map[string]string{}
	locs := sectionTag.FindAllStringSubmatchIndex(s, -1)
	for i, l := range locs {
		if s[l[4]:l[5]] != "begin" {
			continue
		}
		name := s[l[2]:l[3]]
		end := len(s)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[name] = s[l[1]:end]
	}
	return out
}

// MemInfoScript prints the guest's /proc/meminfo (for RunSection).
const MemInfoScript = `cat /proc/meminfo`

// MemoryInUse returns MemTotal − MemAvailable, in bytes, from the text of
// /proc/meminfo: the memory the guest cannot hand out, which includes the
// unpacked initramfs (it stays in RAM), the kernel's allocations, the
// loaded modules and every process.
func MemoryInUse(meminfo string) (int64, error) {
	vals := map[string]int64{}
	for _, line := range strings.Split(meminfo, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: meminfo line %q", ErrGuestCommand, line)
			}
			vals[strings.TrimSuffix(f[0], ":")] = n * 1024
		}
	}
	total, ok1 := vals["MemTotal"]
	avail, ok2 := vals["MemAvailable"]
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%w: no MemTotal/MemAvailable in %q", ErrGuestCommand, meminfo)
	}
	return total - avail, nil
}
