// Package ifname finds the Linux interface name of a NIC the host hot-added
// to the utility VM. The host names a NIC by its VMBus instance id; the
// kernel publishes the matching interface under sysfs:
//
//	netvsc: <sysfs>/bus/vmbus/devices/<id>/net/<ifname>
//	vPCI:   <sysfs>/bus/vmbus/devices/<id>/pci<bus>/<bus><slot>/net/<ifname>
//
// This is the hardware seam of guest networking: Sysfs takes the sysfs root
// as a parameter so tests can point it at a tree they built.
package ifname
