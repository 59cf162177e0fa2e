package cgroup

import "errors"

var (
	// ErrNoCgroupFS means the root is neither a cgroup2 mount nor a
	// directory holding cgroup v1 hierarchies.
	ErrNoCgroupFS = errors.New("no cgroup filesystem found")
	// ErrNoMemoryController means the memory controller, which the GCS
	// needs to protect itself from its workloads, is not available.
	ErrNoMemoryController = errors.New("memory controller not available")
	// ErrReserveTooLarge means the VM has no more RAM than the root memory
	// reserve, so no memory is left for containers.
	ErrReserveTooLarge = errors.New("total memory does not exceed the root memory reserve")
	// ErrInvalidPath means a cgroup path is not absolute or leaves the
	// hierarchy.
	ErrInvalidPath = errors.New("invalid cgroup path")
	// ErrNotExist means the cgroup does not exist.
	ErrNotExist = errors.New("cgroup does not exist")
	// ErrStatsTooLarge means a cgroup's statistics do not fit the size a
	// bridge message allows even after trimming.
	ErrStatsTooLarge = errors.New("cgroup statistics too large")
)
