// Package oci holds the guest's container-kind logic and the OCI spec
// rewriting done at Create time (docs/lifecycle.md, "Container kinds" to
// "Guest directory layout"). It is pure spec logic plus the files the spec
// says to write; it does not run runc, mount layers or configure network
// links, and it keeps no state.
//
// # Kinds
//
// Classify picks sandbox, workload or standalone from the CRI and
// virtual-pod annotations and returns the pod (sandbox) id; SandboxRoot
// gives the pod root (the bundle, or <dir(bundle)>/virtual-pods/<V>);
// CgroupsPath and PodCgroupPath give the cgroup paths. Whether a
// workload's pod exists is the caller's (the host state machine's) check.
//
// # Spec setup
//
// SetupSandbox, SetupWorkload and SetupStandalone (or Setup, by kind) rewrite
// the spec in place as docs/lifecycle.md, "Sandbox spec setup", "Workload
// spec setup" and "Standalone spec setup" describe. Options carries the UVM
// hostname, the DNS data of the container's network namespace record (built
// by the caller with DNSFromAdapters; this package does not know about
// namespaces or links), the bundle path and an injectable /dev root for
// device lookups. The remaining Create steps are separate calls for the
// caller to order (docs/lifecycle.md, "Create, step by step"):
// AddTeeLogDirMount (Tee-log directory), TeeLogPath (Tee-log file),
// HostNetworkRequested + ApplyHostNetwork (Host networking), WriteConfig
// (Bundle).
//
// Files: WriteSandboxFiles writes hostname, hosts and resolv.conf, each
// atomically (temporary file, fsync, rename) with mode 0644, after the
// hostname was validated; HostsContent and DNS.ResolvConf give their exact
// bytes.
//
// User names: ResolveUser implements docs/lifecycle.md, "User names", against
// the container rootfs's /etc/passwd and /etc/group, opened through
// internal/safepath so that symlinks cannot lead outside the rootfs.
//
// # Path safety
//
// Every host- or container-controlled path (sandbox://, sandbox-tmp://
// and hugepages:// sources, tee log paths, /etc/passwd in a rootfs, device
// paths) is joined with internal/safepath: ".." that climbs out is
// rejected, and symlinks are resolved inside the directory they live in.
// Ids used as path components must pass ValidateID.
//
// # Deliberate differences from upstream
//
//   - DNS values containing whitespace or control characters are rejected
//     (they would inject lines into resolv.conf) and empty values are
//     dropped.
//   - uvm:// targets must be absolute; hugepages:// page sizes must look
//     like "<n>K|M|G"; linux.devices paths must be below /dev.
//   - A numeric uid or gid that is out of uint32 range is always an error.
//
// PreparePodRoot mounts the shared directories of a sandbox's pod root
// (sandboxMounts/, sandboxTmpfsMounts/, hugepages/) and creates logs/.
//
// # Assigned devices
//
// vPCI devices in a workload's windows.devices ("vpci",
// "vpci-instance-id") get their device nodes through Options.Assigned
// (internal/vpci). GPUs ("gpu") are refused with ErrUnsupportedDevice: the
// NVIDIA driver installation and createRuntime hook are not implemented.
// Confidential-mode checks and security-policy enforcement are not part of
// this package.
package oci
