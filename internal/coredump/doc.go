// Package coredump sets where the kernel writes process core dumps
// (-core-dump-location): the pattern is written verbatim to
// /proc/sys/kernel/core_pattern. It is global to the VM, so it applies to
// every container.
package coredump
