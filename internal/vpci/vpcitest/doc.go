// Package vpcitest builds the part of a fake sysfs and /dev tree that
// stands for a PCI device assigned over VMBus, the way the kernel lays it
// out, for tests of internal/vpci and of the gcs through the wire.
package vpcitest
