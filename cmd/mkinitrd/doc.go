// Command mkinitrd writes the utility VM image (out/initrd.img and
// out/rootfs.tar.gz) from built binaries, busybox and the installed Debian
// cloud kernel's modules, and optionally a copy of that kernel (the boot
// files a host needs together); see internal/initrd and docs/vm.md.
// Flag parsing and wiring only.
package main
