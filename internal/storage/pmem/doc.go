// Package pmem mounts read-only layers delivered on VPMem devices
// (docs/resources.md, "VPMemDevice"): /dev/pmem<N> as a whole, or one packed
// layer inside it through a dm-linear mapping, optionally verified with
// dm-verity, mounted ext4 read-only with noload.
package pmem
