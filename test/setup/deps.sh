#!/usr/bin/env bash
# Installs the Debian packages that the build and the tests need. Safe to run
# again: it only calls apt-get when something is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

packages=(
  e2fsprogs       # mkfs.ext4: scratch and layer images, and the VM image's copy (the host formats scratch with it)
  xfsprogs        # mkfs.xfs: encrypted scratch formatting (storage tests and the VM image)
  chrony          # chronyd: the VM image's copy, and the time sync start-up test runs the real binary
  busybox-static  # the root filesystem of test containers
  iproute2        # only used by tests to build veth fixtures
  libseccomp-dev  # runc is built with seccomp support
  qemu-system-x86 # the VM boot tests (test/vm): qemu-system-x86_64, qboot.rom
  linux-image-amd64 # guest kernel (out/kernel, the VM tests' PVH vmlinux) and the initrd's modules
  lz4             # unpacks the vmlinux from the kernel's bzImage (Debian compresses it with LZ4 or XZ)
  xz-utils        # the same for an XZ payload
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
  # Installing a package with a service (chrony) must not start it on this
  # machine: without a policy-rc.d, one that denies every start is put in
  # place for the install and removed afterwards.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
