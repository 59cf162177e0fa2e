// Package vpci finds a PCI device the host assigned to the utility VM
// (virtual PCI over VMBus) and the device nodes its driver created, behind
// injectable sysfs and /dev roots so that tests can use a fake tree.
//
// The lookup follows the reference guest (upstream
// internal/guest/storage/pci/pci.go and internal/guest/spec/spec_devices.go):
// the device appears as <sys>/bus/vmbus/devices/<VMBus id>/pci<D:B>/<D:B>*,
// waited for until exactly one entry matches; its nodes are the character
// and block devices under /dev whose <sys>/dev/{char,block}/<major>:<minor>
// link resolves below that sysfs directory, waited for until at least one
// exists (a driver creates them some time after the device appeared).
//
// GPUs are not handled here: their driver installation and NVIDIA hooks are
// not implemented by this guest.
package vpci
