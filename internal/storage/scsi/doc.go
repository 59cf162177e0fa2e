// Package scsi finds, mounts, unmounts and unplugs the SCSI disks the host
// attaches to the utility VM (docs/resources.md, "MappedVirtualDisk" and
// "SCSIDevice"): host controller index -> fixed VMBus controller GUID ->
// sysfs SCSI host -> <host>:0:0:<lun> -> block device, with every wait
// bounded by the caller's context.
package scsi
