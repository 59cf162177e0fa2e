// Package initrd builds the utility VM's boot image: a newc cpio archive
// (the format the Linux kernel unpacks into its initramfs), gzip-compressed,
// and the same tree as a tar archive for tools that want a root filesystem.
//
// Output is reproducible byte for byte: entries are sorted by path, every
// entry is owned by 0:0 with a fixed modification time, inode numbers are
// assigned in order, and the gzip header carries no name and no time.
//
// The package has these parts: Writer and Reader speak the newc format;
// Tree is the in-memory description of an image (files may point at host
// paths and are streamed when written); Layout fills a Tree with the
// opengcs image layout (init, gcs, vsockexec, runc, busybox, the host
// programs of HostPrograms, configuration files, kernel modules);
// LibResolver finds a dynamically linked program's loader and shared
// libraries from its ELF file, as the loader would; Parts reports what
// each part of an image costs. Module dependency order lives in the
// moddep subpackage, which init also uses at boot.
package initrd
