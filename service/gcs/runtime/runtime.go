package runtime

import (
	"context"
	"os"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// StdioFiles are the standard streams handed to a container process. A nil
// file means /dev/null. Unused when the process has a terminal.
type StdioFiles struct {
	Stdin, Stdout, Stderr *os.File
}

// Status is a container's OCI status.
type Status string

// The OCI statuses runc reports.
const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// State describes a container as the runtime sees it.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Runtime creates and finds containers.
type Runtime interface {
	// Create creates the container id from the OCI bundle (config.json and
	// rootfs) without starting its init. The init's stdio is stdio, or a
	// pty (Container.Console) if config.json asks for a terminal.
	Create(ctx context.Context, id, bundle string, stdio StdioFiles) (Container, error)
	// Prepare is Create with the runtime's work deferred: nothing runs
	// until Start, which creates and starts the container in one step
	// (runc run), or until another method needs the container to exist,
	// which creates it first (runc create). Errors of the deferred work
	// are returned by that method. Pid is 0 and Console nil until then.
	// The runtime keeps its own duplicates of stdio.
	Prepare(ctx context.Context, id, bundle string, stdio StdioFiles) (Container, error)
	// Get returns a container created by this Runtime and not yet deleted.
	Get(id string) (Container, error)
	// List returns the state of every container the underlying runtime knows,
	// including ones this Runtime did not create.
	List(ctx context.Context) ([]State, error)
}

// Container is a created container. Its init process is the container's
// Process-like identity: Pid, Console and Wait refer to it.
type Container interface {
	ID() string
	Bundle() string
	// Pid is the init's pid in the GCS's pid namespace.
	Pid() int
	// Console is the init's pty master, or nil without a terminal.
	Console() *os.File
	// Start runs the init's program (runc start; runc run for a
	// container from Prepare).
	Start(ctx context.Context) error
	// Materialize creates a container whose creation Prepare deferred, so
	// that its init and cgroup exist; a no-op otherwise.
	Materialize(ctx context.Context) error
	// Exec starts proc inside the running container (runc exec -d).
	Exec(ctx context.Context, proc *specs.Process, stdio StdioFiles) (Process, error)
	// Kill sends sig to the container (runc kill [--all]). What reaches
	// whom is runc's rule: since runc 1.2 SIGKILL to a container without
	// its own pid namespace kills every process in its cgroup, any other
	// signal goes to the init only, and all merely makes killing a stopped
	// container succeed.
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	// Signal sends sig to the init alone, through a handle on the process
	// taken when it was created (a pidfd), never through its pid: after
	// the init was reaped it fails with ErrProcessDoesNotExist and cannot
	// reach a process that reuses the pid.
	Signal(sig syscall.Signal) error
	// Delete removes the container (runc delete [--force]) and the
	// runtime's state for it. force kills a running container first.
	Delete(ctx context.Context, force bool) error
	State(ctx context.Context) (*State, error)
	// Ps lists the pids of the container's processes (GCS namespace).
	Ps(ctx context.Context) ([]int, error)
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Update applies new resource limits (runc update --resources -).
	Update(ctx context.Context, res *specs.LinuxResources) error
	// Wait returns the init's exit code once it has been reaped.
	Wait(ctx context.Context) (exitCode int, err error)
	// Done is closed when the init has been reaped.
	Done() <-chan struct{}
}

// Process is a process exec'd into a container.
type Process interface {
	Pid() int
	// Console is the process's pty master, or nil without a terminal.
	Console() *os.File
	// Wait returns the exit code once the process has been reaped.
	Wait(ctx context.Context) (exitCode int, err error)
	// Done is closed when the process has been reaped.
	Done() <-chan struct{}
	// Signal sends sig; after the process was reaped it fails with
	// ErrProcessDoesNotExist.
	Signal(sig syscall.Signal) error
}
