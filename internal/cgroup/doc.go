// Package cgroup owns the guest's control groups: it detects whether the
// machine runs cgroup v1 or a pure cgroup v2 hierarchy, creates the GCS's own
// cgroup and the parent cgroup of every container (and keeps that parent's
// memory limit in step with the VM's RAM), watches memory thresholds and OOM
// kills, and reads a container cgroup's statistics into the cgroup-v1-shaped
// metrics the host expects.
//
// Everything is addressed relative to an injectable filesystem root
// (/sys/fs/cgroup in the guest) and an optional base path inside it, so tests
// can work in a throwaway sub-hierarchy.
//
// Mode detection follows one rule: the hierarchy is v2 only when the root
// itself is a cgroup2 mount. A hybrid host (v1 controllers plus a v2
// "unified" mount beside them) is driven as v1.
package cgroup
