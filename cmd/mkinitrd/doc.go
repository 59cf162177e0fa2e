// Command mkinitrd writes the utility VM image (out/initrd.img and
// out/rootfs.tar.gz) from built binaries, busybox, the host programs of
// initrd.HostPrograms with their libraries, and the installed Debian
// generic kernel's modules, and optionally a copy of that kernel (the boot
// files a host needs together); see internal/initrd and docs/vm.md.
// Flag parsing and wiring only.
package main
