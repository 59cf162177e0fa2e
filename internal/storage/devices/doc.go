// Package devices is the hardware seam of the storage packages: where sysfs
// and /dev live (injectable roots, so tests can build a fake sysfs tree that
// points at real loop devices) and bounded polling for devices to appear.
package devices
