#!/usr/bin/env bash
# Installs the Debian packages that the build and the tests need. Safe to run
# again: it only calls apt-get when something is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

for p in "$@" ; do :; done
packages=(
  e2fsprogs       # mkfs.ext4 for scratch and layer images
  xfsprogs        # mkfs.xfs: SCSI scratch formatting (storage tests)
  chrony          # chronyd: the time sync start-up test runs the real binary
  busybox-static  # the root filesystem of test containers
  iproute2        # only used by tests to build veth fixtures
  libseccomp-dev  # runc is built with seccomp support
  qemu-system-x86 # the VM boot tests (test/vm): qemu-system-x86_64, qboot.rom
  linux-image-cloud-amd64 # guest kernel (PVH vmlinux) and modules for the initrd
  lz4             # unpacks the vmlinux from the cloud kernel's bzImage
  pkg-config
  gcc
  libc6-dev       # cgo builds (runc, the static runc of the VM image); gcc only recommends it
)
for p in "${packages[@]}"; do
  pkg_installed "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
