// Package poll waits for a condition that nothing signals: a device node or
// sysfs entry appearing after a hot-plug. It is the one bounded wait loop
// the hardware seams share; the bound is the caller's context.
package poll
