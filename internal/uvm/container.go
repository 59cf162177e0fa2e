package uvm

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/stdio"
)

// containerState is where a container is in its life.
type containerState int32

const (
	stateCreating containerState = iota
	stateCreated
	stateRunning
	stateTerminated
)

func (s containerState) String() string {
	switch s {
	case stateCreating:
		return "creating"
	case stateCreated:
		return "created"
	case stateRunning:
		return "running"
	case stateTerminated:
		return "terminated"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// container is one container created through the bridge.
type container struct {
	id        string
	kind      oci.Kind
	sandboxID string
	// root is the sandbox root (pod files) or the bundle.
	root string
	// nsID is the lower-cased network namespace of the spec.
	nsID        string
	hostNetwork bool
	// cgroupPath is the container's cgroup below the gcs's cgroup prefix.
	cgroupPath string
	// userFromName is set when the spec's user was resolved from a name.
	userFromName bool
	// stdioDenied is set when the security policy denies the init stdio
	// access.
	stdioDenied bool
	bundle      string
	scratch     string
	spec        *specs.Spec
	// teeLog is the file below the pod's logs/ that also receives the
	// init's output (tee-log-path annotation); "" for none. teeFile is it
	// opened, from the init's start until its output is relayed.
	teeLog  string
	teeFile atomic.Pointer[os.File]

	state atomic.Int32
	rc    runtime.Container
	// initRelay carries the init's stdio from runc create on; it is started
	// when the host executes the init and hands over its ports.
	initRelay stdio.Relay
	init      *process
	// initPid is the init's pid once known: at Create, or at the init's
	// ExecuteProcess when the runtime deferred the create (deferred).
	initPid  atomic.Uint32
	deferred bool
	execs    *processTable

	// exitType is the notification type, set before a SIGTERM/SIGKILL is
	// sent to the init.
	exitMu   sync.Mutex
	exitType prot.NotificationType

	// startMu orders startInit against the init's exit: initHanded says
	// whether the host was given the init (its ExecuteProcess succeeded).
	startMu    sync.Mutex
	initHanded bool

	// initAnswered is closed once a WaitForProcess on the init has been
	// answered; the exit notification waits for it. shutdownAnswered is
	// closed once a shutdown request has been answered; the notification of
	// a container whose init the host never got waits for that instead.
	initAnswered         chan struct{}
	initAnsweredOnce     sync.Once
	shutdownAnswered     chan struct{}
	shutdownAnsweredOnce sync.Once
	// deleted is closed by DeleteContainerState; it stops the notifier.
	deleted     chan struct{}
	deletedOnce sync.Once
}

func newContainer(id string) *container {
	c := &container{
		id:               id,
		execs:            newProcessTable(retainedExits),
		exitType:         prot.NtUnexpectedExit,
		initAnswered:     make(chan struct{}),
		shutdownAnswered: make(chan struct{}),
		deleted:          make(chan struct{}),
	}
	c.state.Store(int32(stateCreating))
	return c
}

// isInit reports whether pid is the container's init.
func (c *container) isInit(pid uint32) bool {
	p := c.initPid.Load()
	return p != 0 && p == pid && c.init != nil
}

func (c *container) getState() containerState  { return containerState(c.state.Load()) }
func (c *container) setState(s containerState) { c.state.Store(int32(s)) }

func (c *container) setExitType(t prot.NotificationType) {
	c.exitMu.Lock()
	c.exitType = t
	c.exitMu.Unlock()
}

func (c *container) getExitType() prot.NotificationType {
	c.exitMu.Lock()
	defer c.exitMu.Unlock()
	return c.exitType
}

func (c *container) markInitAnswered() {
	c.initAnsweredOnce.Do(func() { close(c.initAnswered) })
}

func (c *container) markShutdownAnswered() {
	c.shutdownAnsweredOnce.Do(func() { close(c.shutdownAnswered) })
}

func (c *container) markDeleted() {
	c.deletedOnce.Do(func() { close(c.deleted) })
}

// registry is the container table.
type registry struct {
	mu         sync.Mutex
	containers map[string]*container
}

func newRegistry() *registry { return &registry{containers: make(map[string]*container)} }

// reserve inserts a new container in the creating state.
func (r *registry) reserve(c *container) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[c.id]; ok {
		return prot.Errorf(prot.HrVmcomputeSystemAlreadyExists, "container %s already exists", c.id)
	}
	r.containers[c.id] = c
	return nil
}

func (r *registry) remove(c *container) {
	r.mu.Lock()
	if r.containers[c.id] == c {
		delete(r.containers, c.id)
	}
	r.mu.Unlock()
}

// any reports whether some container satisfies f.
func (r *registry) any(f func(c *container) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.containers {
		if f(c) {
			return true
		}
	}
	return false
}

// lookup finds a container that has finished Create.
func (r *registry) lookup(id string) (*container, error) {
	r.mu.Lock()
	c, ok := r.containers[id]
	r.mu.Unlock()
	if !ok {
		return nil, prot.Errorf(prot.HrVmcomputeSystemNotFound, "container %s not found", id)
	}
	if c.getState() == stateCreating {
		// The reference intends InvalidState here but its wire value is
		// E_FAIL; hosts see E_FAIL.
		return nil, prot.Errorf(prot.HrFail, "container %s is still being created", id)
	}
	return c, nil
}

// closeTee closes the tee log file, once.
func (c *container) closeTee() error {
	if f := c.teeFile.Swap(nil); f != nil {
		return f.Close()
	}
	return nil
}
