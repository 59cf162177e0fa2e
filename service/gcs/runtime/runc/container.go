package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/service/gcs/runtime"
)

// Container is a container created by Runtime. It implements
// runtime.Container.
type Container struct {
	r      *Runtime
	id     string
	bundle string

	// mu guards the fields below and serialises the deferred runc create
	// or run with everything that needs the container to exist.
	mu sync.Mutex
	// pending is set while a Prepare'd container is not known to runc yet.
	pending *pendingCreate
	// deleted is set by Delete of a pending container.
	deleted bool
	// ready is closed once init is set, or once a pending container was
	// deleted without ever running.
	ready   chan struct{}
	init    *reaper.Proc
	console *os.File
}

// pendingCreate is what a deferred create needs: the driver's own copies
// of the init's stdio.
type pendingCreate struct {
	stdio runtime.StdioFiles
}

func (p *pendingCreate) close() {
	for _, f := range []*os.File{p.stdio.Stdin, p.stdio.Stdout, p.stdio.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// ExitCodeNeverStarted is what Wait returns for a Prepare'd container
// deleted before runc ever ran it: the code of an init killed by SIGKILL,
// which is what a created container's init reports after a forced delete.
const ExitCodeNeverStarted = 128 + int(unix.SIGKILL)

var _ runtime.Container = (*Container)(nil)

// Create runs `runc create`. Whether the init gets a terminal is read from
// <bundle>/config.json.
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio runtime.StdioFiles) (runtime.Container, error) {
	c, err := r.newContainer(id, bundle)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.launch(ctx, "create", stdio); err != nil {
		os.RemoveAll(r.containerDir(id))
		r.release(id)
		return nil, err
	}
	r.register(c)
	return c, nil
}

// Prepare records the container without running runc: Start then runs
// `runc run --detach` (one runc execution instead of create and start),
// and any other method that needs the container to exist runs
// `runc create` first. The driver keeps its own duplicates of stdio until
// then.
func (r *Runtime) Prepare(ctx context.Context, id, bundle string, stdio runtime.StdioFiles) (runtime.Container, error) {
	c, err := r.newContainer(id, bundle)
	if err != nil {
		return nil, err
	}
	p := &pendingCreate{}
	for _, f := range []struct {
		src *os.File
		dst **os.File
	}{{stdio.Stdin, &p.stdio.Stdin}, {stdio.Stdout, &p.stdio.Stdout}, {stdio.Stderr, &p.stdio.Stderr}} {
		if f.src == nil {
			continue
		}
		fd, err := unix.FcntlInt(f.src.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			p.close()
			os.RemoveAll(r.containerDir(id))
			r.release(id)
			return nil, fmt.Errorf("prepare %s: duplicate stdio: %w", id, err)
		}
		*f.dst = os.NewFile(uintptr(fd), f.src.Name())
	}
	c.pending = p
	r.register(c)
	r.log.WithFields(logrus.Fields{"cid": id, "bundle": c.bundle}).Debug("runc: container prepared; create deferred")
	return c, nil
}

// newContainer reserves id and creates its state directory.
func (r *Runtime) newContainer(id, bundle string) (_ *Container, err error) {
	if err := runtime.ValidateID(id); err != nil {
		return nil, err
	}
	bundle, err = filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("create %s: bundle path: %w", id, err)
	}
	if err := r.reserve(id); err != nil {
		return nil, err
	}
	dir := r.containerDir(id)
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
			r.release(id)
		}
	}()
	// A directory left by an earlier instance of the driver is stale: the id
	// was free in this one.
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("create %s: clear state dir: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: state dir: %w", id, err)
	}
	return &Container{r: r, id: id, bundle: bundle, ready: make(chan struct{})}, nil
}

// launch runs `runc create` or `runc run --detach` (command "create" or
// "run") and watches the init. Whether the init gets a terminal is read
// from the bundle's config.json. c.mu is held.
func (c *Container) launch(ctx context.Context, command string, stdio runtime.StdioFiles) (err error) {
	r, id, bundle := c.r, c.id, c.bundle
	spec, err := readSpec(bundle)
	if err != nil {
		return fmt.Errorf("%s %s: %w", command, id, err)
	}
	terminal := spec.Process != nil && spec.Process.Terminal

	pidFile := filepath.Join(r.containerDir(id), "init.pid")
	args := []string{"--bundle", bundle, "--pid-file", pidFile}
	if command == "run" {
		args = append(args, "--detach")
	}
	if r.noPivot {
		args = append(args, "--no-pivot")
	}
	var cs *consoleSocket
	if terminal {
		if cs, err = newConsoleSocket(r.stateDir); err != nil {
			return fmt.Errorf("%s %s: %w", command, id, err)
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
		stdio = runtime.StdioFiles{}
	}
	args = append(args, id)

	mark := r.reaper.Mark()
	if err := r.startDetached(ctx, call{command: command, args: args, id: id, bundle: bundle}, stdio); err != nil {
		var rerr *Error
		if !errors.As(err, &rerr) {
			// Cancelled half-way: runc may have left a container behind.
			r.forceDelete(id)
		}
		return err
	}
	var console *os.File
	defer func() {
		if err != nil {
			if console != nil {
				console.Close()
			}
			r.forceDelete(id)
		}
	}()
	pid, err := readPid(pidFile)
	if err != nil {
		return fmt.Errorf("%s %s: %w", command, id, err)
	}
	init := r.reaper.Watch(pid, mark)
	if cs != nil {
		if console, err = cs.receive(ctx); err != nil {
			// Do not leave the init behind unobserved.
			_ = init.Signal(unix.SIGKILL)
			return fmt.Errorf("%s %s: %w", command, id, err)
		}
	}
	c.init, c.console = init, console
	if c.pending != nil {
		c.pending.close()
		c.pending = nil
	}
	close(c.ready)
	what := "runc: container created"
	if command == "run" {
		what = "runc: container created and started"
	}
	r.log.WithFields(logrus.Fields{"cid": id, "pid": pid, "bundle": bundle, "terminal": terminal}).Info(what)
	return nil
}

// ensure runs the deferred `runc create` of a Prepare'd container that was
// not started yet; it fails once a pending container was deleted.
func (c *Container) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return fmt.Errorf("container %s: %w", c.id, runtime.ErrContainerDoesNotExist)
	}
	if c.pending == nil {
		return nil
	}
	return c.launch(ctx, "create", c.pending.stdio)
}

// Materialize creates a Prepare'd container now (runc create), so that its
// init and cgroup exist; a no-op for a container runc already knows.
func (c *Container) Materialize(ctx context.Context) error { return c.ensure(ctx) }

// forceDelete removes whatever runc knows about id, ignoring errors; used to
// roll back a failed Create.
func (r *Runtime) forceDelete(id string) {
	if _, err := r.run(context.Background(), call{command: "delete", args: []string{"--force", id}, id: id}); err != nil {
		r.log.WithError(err).WithField("cid", id).Debug("runc: rollback delete")
	}
}

// ID is the container id.
func (c *Container) ID() string { return c.id }

// Bundle is the absolute bundle path.
func (c *Container) Bundle() string { return c.bundle }

// Pid is the init's pid; 0 while a Prepare'd container has not been
// created yet.
func (c *Container) Pid() int {
	if init := c.getInit(); init != nil {
		return init.Pid()
	}
	return 0
}

func (c *Container) getInit() *reaper.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.init
}

// Console is the init's pty master (nil without a terminal, and before a
// Prepare'd container was created); the caller owns it.
func (c *Container) Console() *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.console
}

// Start runs `runc start`, or `runc run --detach` for a Prepare'd container
// that was not created yet.
func (c *Container) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		return fmt.Errorf("start %s: %w", c.id, runtime.ErrContainerDoesNotExist)
	}
	if c.pending != nil {
		defer c.mu.Unlock()
		return c.launch(ctx, "run", c.pending.stdio)
	}
	c.mu.Unlock()
	_, err := c.r.run(ctx, call{command: "start", args: []string{c.id}, id: c.id, bundle: c.bundle})
	return err
}

// Kill runs `runc kill [--all] <id> <sig>`. With runc >= 1.2 --all only
// makes killing a stopped container succeed: SIGKILL reaches every process
// of a container without its own pid namespace (through its cgroup) with or
// without it, and any other signal reaches the init alone.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	if err := c.ensure(ctx); err != nil {
		return err
	}
	args := []string{c.id, strconv.Itoa(int(sig))}
	if all {
		args = append([]string{"--all"}, args...)
	}
	_, err := c.r.run(ctx, call{command: "kill", args: args, id: c.id})
	return err
}

// Signal sends sig to the init through the reaper's pidfd (see
// runtime.Container).
// A Prepare'd container not created yet has no init to signal.
func (c *Container) Signal(sig syscall.Signal) error {
	init := c.getInit()
	if init == nil {
		return fmt.Errorf("signal init of %s: not created yet: %w", c.id, runtime.ErrProcessDoesNotExist)
	}
	if err := init.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal init %d of %s: %w", init.Pid(), c.id, runtime.ErrProcessDoesNotExist)
		}
		return fmt.Errorf("signal init %d of %s: %w", init.Pid(), c.id, err)
	}
	return nil
}

// Delete runs `runc delete [--force]` and removes the driver's state. When
// runc no longer knows the container the state is removed too, and the
// error (wrapping runtime.ErrContainerDoesNotExist) is still returned.
func (c *Container) Delete(ctx context.Context, force bool) error {
	if c.deletePending() {
		return nil
	}
	err := c.runDelete(ctx, force)
	if err != nil && !errors.Is(err, runtime.ErrContainerDoesNotExist) {
		return err
	}
	if rerr := os.RemoveAll(c.r.containerDir(c.id)); rerr != nil {
		err = errors.Join(err, fmt.Errorf("delete %s: remove state dir: %w", c.id, rerr))
	}
	c.r.release(c.id)
	return err
}

// deletePending forgets a Prepare'd container runc never saw, and reports
// whether it was one. Its Wait then returns ExitCodeNeverStarted.
func (c *Container) deletePending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		return false
	}
	c.pending.close()
	c.pending = nil
	c.deleted = true
	close(c.ready)
	os.RemoveAll(c.r.containerDir(c.id))
	c.r.release(c.id)
	c.r.log.WithField("cid", c.id).Debug("runc: deferred container deleted before it ran")
	return true
}

// runDelete runs `runc delete`. `runc delete --force` always sleeps 100 ms
// after its SIGKILL, even for a stopped container, so once the init has
// been reaped a plain delete is tried first: for a stopped container it
// does the same cleanup, including killing what is left in the cgroup of
// a container sharing its pid namespace. --force follows if that fails
// for any other reason than the container being unknown.
func (c *Container) runDelete(ctx context.Context, force bool) error {
	if force {
		if _, exited := c.getInit().Exited(); !exited {
			_, err := c.r.run(ctx, call{command: "delete", args: []string{"--force", c.id}, id: c.id})
			return err
		}
		_, err := c.r.run(ctx, call{command: "delete", args: []string{c.id}, id: c.id})
		if err == nil || errors.Is(err, runtime.ErrContainerDoesNotExist) {
			return nil // as with --force, an unknown container is no error
		}
		c.r.log.WithError(err).WithField("cid", c.id).Debug("runc: plain delete of an exited container failed; forcing")
		_, err = c.r.run(ctx, call{command: "delete", args: []string{"--force", c.id}, id: c.id})
		return err
	}
	_, err := c.r.run(ctx, call{command: "delete", args: []string{c.id}, id: c.id})
	return err
}

// State runs `runc state`.
func (c *Container) State(ctx context.Context) (*runtime.State, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	out, err := c.r.run(ctx, call{command: "state", args: []string{c.id}, id: c.id})
	if err != nil {
		return nil, err
	}
	var s runtime.State
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("runc state %s: decode %q: %w", c.id, out, err)
	}
	return &s, nil
}

// Ps runs `runc ps --format json`.
func (c *Container) Ps(ctx context.Context) ([]int, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	out, err := c.r.run(ctx, call{command: "ps", args: []string{"--format", "json", c.id}, id: c.id})
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(bytes.TrimSpace(out), &pids); err != nil {
		return nil, fmt.Errorf("runc ps %s: decode %q: %w", c.id, out, err)
	}
	return pids, nil
}

// Pause runs `runc pause`.
func (c *Container) Pause(ctx context.Context) error {
	if err := c.ensure(ctx); err != nil {
		return err
	}
	_, err := c.r.run(ctx, call{command: "pause", args: []string{c.id}, id: c.id})
	return err
}

// Resume runs `runc resume`.
func (c *Container) Resume(ctx context.Context) error {
	if err := c.ensure(ctx); err != nil {
		return err
	}
	_, err := c.r.run(ctx, call{command: "resume", args: []string{c.id}, id: c.id, bundle: c.bundle})
	return err
}

// Update runs `runc update --resources -` with res as JSON on stdin.
func (c *Container) Update(ctx context.Context, res *specs.LinuxResources) error {
	if res == nil {
		return fmt.Errorf("update %s: no resources", c.id)
	}
	if err := c.ensure(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("update %s: encode resources: %w", c.id, err)
	}
	_, err = c.r.run(ctx, call{command: "update", args: []string{"--resources", "-", c.id}, id: c.id, stdin: bytes.NewReader(b)})
	return err
}

// Wait returns the init's exit code once it has been reaped, or
// ExitCodeNeverStarted once a Prepare'd container was deleted before it
// ran.
func (c *Container) Wait(ctx context.Context) (int, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return -1, fmt.Errorf("wait for container %s: %w", c.id, ctx.Err())
	}
	init := c.getInit()
	if init == nil {
		return ExitCodeNeverStarted, nil
	}
	e, err := init.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("wait for container %s: %w", c.id, err)
	}
	return e.Code(), nil
}

// Done is closed when the init has been reaped (or a Prepare'd container
// was deleted before it ran).
func (c *Container) Done() <-chan struct{} {
	select {
	case <-c.ready:
		if init := c.getInit(); init != nil {
			return init.Done()
		}
		return c.ready
	default:
	}
	done := make(chan struct{})
	go func() {
		<-c.ready
		if init := c.getInit(); init != nil {
			<-init.Done()
		}
		close(done)
	}()
	return done
}

// Exec runs `runc exec -d --process <file>`; proc.Terminal selects a pty.
func (c *Container) Exec(ctx context.Context, proc *specs.Process, stdio runtime.StdioFiles) (_ runtime.Process, err error) {
	if proc == nil {
		return nil, fmt.Errorf("exec in %s: no process", c.id)
	}
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(c.r.containerDir(c.id), "exec-")
	if err != nil {
		return nil, fmt.Errorf("exec in %s: process dir: %w", c.id, err)
	}
	defer os.RemoveAll(dir)
	b, err := json.Marshal(proc)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: encode process: %w", c.id, err)
	}
	procFile := filepath.Join(dir, "process.json")
	if err := os.WriteFile(procFile, b, 0o600); err != nil {
		return nil, fmt.Errorf("exec in %s: write process: %w", c.id, err)
	}
	pidFile := filepath.Join(dir, "pid")
	args := []string{"--detach", "--process", procFile, "--pid-file", pidFile}
	var cs *consoleSocket
	if proc.Terminal {
		if cs, err = newConsoleSocket(c.r.stateDir); err != nil {
			return nil, fmt.Errorf("exec in %s: %w", c.id, err)
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
		stdio = runtime.StdioFiles{}
	}
	args = append(args, c.id)

	mark := c.r.reaper.Mark()
	if err := c.r.startDetached(ctx, call{command: "exec", args: args, id: c.id, bundle: c.bundle}, stdio); err != nil {
		return nil, err
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.id, err)
	}
	p := &Process{cid: c.id, proc: c.r.reaper.Watch(pid, mark)}
	if cs != nil {
		if p.console, err = cs.receive(ctx); err != nil {
			_ = p.proc.Signal(unix.SIGKILL)
			return nil, fmt.Errorf("exec in %s: %w", c.id, err)
		}
	}
	c.r.log.WithFields(logrus.Fields{"cid": c.id, "pid": pid, "terminal": proc.Terminal}).Info("runc: process exec'd")
	return p, nil
}
