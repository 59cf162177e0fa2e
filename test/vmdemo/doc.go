// Command vmdemo (make vm-demo) boots the utility VM image in QEMU with
// AF_VSOCK through bin/vhost-vsock, exactly as a Hyper-V host would boot
// it apart from -disable-time-sync, and drives the gcs inside like a host:
// negotiate, a busybox layer hot-plugged as a SCSI disk, CombinedLayers,
// a container whose stdio streams to the terminal over vsock, an exec,
// teardown and power-off. It uses KVM when /dev/kvm works, TCG otherwise.
package main
