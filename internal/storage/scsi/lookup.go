package scsi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/opengcs/opengcs/internal/storage/devices"
)

// controllerGUIDs are the VMBus instance ids of the UVM's four SCSI
// controllers, by host controller index.
var controllerGUIDs = [...]string{
	"df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
	"0110f83b-de10-5172-a266-78bca56bf50a",
	"b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
	"305891a9-b251-5dfe-91a2-c25d9212275b",
}

// ControllerGUID returns the VMBus GUID of host controller index c.
func ControllerGUID(c uint8) (string, error) {
	if int(c) >= len(controllerGUIDs) {
		return "", fmt.Errorf("controller %d: %w", c, ErrBadController)
	}
	return controllerGUIDs[c], nil
}

// Lookup resolves SCSI disks through sysfs and /dev under Roots.
type Lookup struct {
	Roots devices.Roots
}

// HostNumber returns the Linux SCSI host number of controller c: the first
// host<N> entry of the controller's VMBus device directory.
func (l Lookup) HostNumber(c uint8) (int, error) {
	guid, err := ControllerGUID(c)
	if err != nil {
		return 0, err
	}
	dir := l.Roots.SysPath("bus", "vmbus", "devices", guid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("controller %d (%s): %w: %w", c, guid, ErrNoHost, err)
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "host")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			continue
		}
		return n, nil
	}
	return 0, fmt.Errorf("controller %d (%s): %w", c, guid, ErrNoHost)
}

// address returns the sysfs SCSI address of lun on host.
func address(host int, lun uint8) string { return fmt.Sprintf("%d:0:0:%d", host, lun) }

// Device waits (bounded by ctx) for the block device of controller c, lun
// and 1-based partition (0 = whole disk) and returns its /dev path once it
// can be opened.
func (l Lookup) Device(ctx context.Context, c, lun uint8, partition uint64) (string, error) {
	host, err := l.HostNumber(c)
	if err != nil {
		return "", err
	}
	addr := address(host, lun)
	blockDir := l.Roots.SysPath("bus", "scsi", "devices", addr, "block")
	var disk string
	err = devices.Poll(ctx, "block device of SCSI "+addr, func() (bool, error) {
		ents, err := os.ReadDir(blockDir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return false, fmt.Errorf("read %s: %w", blockDir, err)
		}
		switch len(ents) {
		case 0:
			return false, nil
		case 1:
			disk = ents[0].Name()
			return true, nil
		default:
			return false, fmt.Errorf("%s: %w", addr, ErrAmbiguous)
		}
	})
	if err != nil {
		return "", err
	}
	name := disk
	if partition > 0 {
		name = fmt.Sprintf("%s%d", disk, partition)
		partDir := l.Roots.SysPath("bus", "scsi", "devices", addr, "block", disk, name)
		err = devices.Poll(ctx, "partition "+name, func() (bool, error) {
			_, err := os.Stat(partDir)
			if err == nil {
				return true, nil
			}
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return false, fmt.Errorf("stat %s: %w", partDir, err)
		})
		if err != nil {
			return "", err
		}
	}
	dev := l.Roots.DevPath(name)
	if err := devices.WaitOpen(ctx, dev); err != nil {
		return "", err
	}
	return dev, nil
}

// Unplug asks the kernel to delete the SCSI device of controller c and lun
// (write "1" to its sysfs delete file). A device that is already gone is a
// success.
func (l Lookup) Unplug(ctx context.Context, c, lun uint8) error {
	host, err := l.HostNumber(c)
	if err != nil {
		return err
	}
	p := l.Roots.SysPath("bus", "scsi", "devices", address(host, lun), "delete")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("unplug SCSI %s: %w", address(host, lun), err)
	}
	defer f.Close()
	if _, err := f.WriteString("1\n"); err != nil {
		return fmt.Errorf("unplug SCSI %s: %w", address(host, lun), err)
	}
	return nil
}
