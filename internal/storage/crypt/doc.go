// Package crypt puts an ephemeral dm-crypt mapping under a scratch disk
// (docs/resources.md, "Encrypted scratch"): a fresh random key that is never
// written anywhere, so the data is unrecoverable once the mapping is closed.
// The mapping is made through the devicemapper package (aes-xts-plain64,
// 4096-byte sectors) rather than cryptsetup/LUKS2; the guest never reopens
// such a disk, so no on-disk header is needed.
package crypt
