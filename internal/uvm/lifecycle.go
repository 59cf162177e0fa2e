package uvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/network"
	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/internal/policy"
	"github.com/opengcs/opengcs/internal/storage/mount"
	"github.com/opengcs/opengcs/internal/storage/overlay"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
)

// watchInit waits for the container's init to exit, publishes its exit
// code once the stdio has been relayed, and then sends the exit
// notification, exactly once: after a wait on the init has been answered
// when the host was given the init, else (a container never started, or
// started without its init) after a shutdown request has been answered.
func (h *Host) watchInit(c *container) {
	code, err := c.rc.Wait(context.Background())
	log := h.log.WithFields(logrus.Fields{"cid": c.id, "pid": c.initPid.Load()})
	if err != nil {
		log.WithError(err).Warn("waiting for init failed")
		code = 255
	}
	// Decided once, against a concurrent startInit: from here on the init
	// can no longer be started.
	c.startMu.Lock()
	handed := c.initHanded
	c.setState(stateTerminated)
	c.startMu.Unlock()
	if !ownsPidNamespace(c) {
		// Without a private pid namespace nothing killed the rest.
		if err := c.rc.Kill(context.Background(), syscall.SIGKILL, true); err != nil {
			log.WithError(err).Debug("kill remaining processes")
		}
	}
	c.initRelay.ProcessExited()
	if err := c.initRelay.Wait(); err != nil {
		log.WithError(err).Debug("init stdio relay ended")
	}
	if err := c.closeTee(); err != nil {
		log.WithError(err).Warn("close tee log")
	}
	log.WithFields(logrus.Fields{"exitCode": code, "started": handed}).Info("container init exited")
	c.init.finish(uint32(code))

	gate := c.initAnswered
	if !handed {
		gate = c.shutdownAnswered
	}
	select {
	case <-gate:
	case <-c.deleted:
		return
	}
	h.cfg.Notifier.Notify(&prot.ContainerNotification{
		MessageBase: prot.MessageBase{ContainerID: c.id, ActivityID: prot.NullActivityID},
		Type:        c.getExitType(),
		Operation:   prot.AoNone,
	})
}

func ownsPidNamespace(c *container) bool {
	if c.spec == nil || c.spec.Linux == nil {
		return false
	}
	for _, ns := range c.spec.Linux.Namespaces {
		if ns.Type == "pid" {
			return ns.Path == ""
		}
	}
	return false
}

// ShutdownContainer sends SIGTERM (graceful) or SIGKILL to the init. A
// container whose init has already exited is already shut down: that is a
// success, and nothing is signalled. When the host was never given the init
// (never started, or started without its init), the exit notification may
// follow the returned func, which must run once the response is queued.
func (h *Host) ShutdownContainer(ctx context.Context, id string, graceful bool) (func(), error) {
	c, err := h.containers.lookup(id)
	if err != nil {
		return nil, err
	}
	sig, nt := syscall.SIGKILL, prot.NtForcedExit
	if graceful {
		sig, nt = syscall.SIGTERM, prot.NtGracefulExit
	}
	if err := h.policy.Shutdown(ctx, id); err != nil {
		return nil, err
	}
	c.startMu.Lock()
	handed := c.initHanded
	c.startMu.Unlock()
	var after func()
	if !handed {
		after = c.markShutdownAnswered
	}
	if c.getState() == stateTerminated {
		return after, nil
	}
	c.setExitType(nt)
	if !handed {
		// A container whose creation was deferred has no init to signal
		// until the runtime creates it (docs/containers.md, "Deferred
		// create").
		if err := c.rc.Materialize(ctx); err != nil {
			return nil, runtimeError(fmt.Sprintf("shutdown %s", id), err)
		}
	}
	if sig == syscall.SIGKILL && !ownsPidNamespace(c) {
		// Only runc knows to kill every process in the container's cgroup;
		// it finds them by cgroup membership, not by a remembered pid.
		if err := c.rc.Kill(ctx, sig, false); err != nil {
			if errors.Is(err, runtime.ErrContainerNotRunning) {
				// The init exited meanwhile.
				return after, nil
			}
			return nil, runtimeError(fmt.Sprintf("shutdown %s", id), err)
		}
		return after, nil
	}
	// Everything else reaches the init alone, through its pidfd: a pid
	// remembered from Create may belong to another process once the init
	// has been reaped.
	if err := c.rc.Signal(sig); err != nil {
		if errors.Is(err, runtime.ErrProcessDoesNotExist) {
			// The init exited meanwhile.
			return after, nil
		}
		return nil, runtimeError(fmt.Sprintf("shutdown %s", id), err)
	}
	return after, nil
}

// SignalProcess delivers a signal to a container process, or, with the
// utility VM's id, to an external process the host started in the UVM; 0
// means SIGKILL. The reference guest answers 0xC037010E for the UVM id, so
// a host could not stop a process it started there; opengcs signals it.
func (h *Host) SignalProcess(ctx context.Context, id string, pid uint32, signal int) error {
	if signal == 0 {
		signal = int(syscall.SIGKILL)
	}
	if signal < 0 || signal > 64 {
		return prot.Errorf(prot.HrFail, "signal %d is not a Linux signal", signal)
	}
	if id == prot.NullContainerID {
		if h.policy.Confidential() {
			// A policy has no rule for it: as the reference.
			return prot.Errorf(prot.HrVmcomputeSystemNotFound, "SignalProcess on the utility VM is not allowed under a security policy")
		}
		p, ok := h.externals.get(pid)
		if !ok {
			return prot.Errorf(prot.HrErrNotFound, "external process %d not found", pid)
		}
		return deliver(p, signal)
	}
	c, err := h.containers.lookup(id)
	if err != nil {
		return err
	}
	if err := h.enforceSignal(ctx, c, pid, signal); err != nil {
		return err
	}
	var p *process
	if c.isInit(pid) {
		p = c.init
		switch syscall.Signal(signal) {
		case syscall.SIGTERM:
			c.setExitType(prot.NtGracefulExit)
		case syscall.SIGKILL:
			c.setExitType(prot.NtForcedExit)
		}
	} else if e, ok := c.execs.get(pid); ok {
		p = e
	} else {
		return prot.Errorf(prot.HrErrNotFound, "process %d not found in container %s", pid, id)
	}
	return deliver(p, signal)
}

// deliver signals p unless it has exited; a process that is gone is
// 0x80070490.
func deliver(p *process, signal int) error {
	pid := p.pid
	if p.exited() {
		return prot.Errorf(prot.HrErrNotFound, "process %d has exited", pid)
	}
	if err := p.signal(signal); err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, os.ErrProcessDone) || errors.Is(err, runtime.ErrProcessDoesNotExist) {
			return prot.Errorf(prot.HrErrNotFound, "process %d has exited", pid)
		}
		return prot.Errorf(prot.HrFail, "signal %d to process %d: %v", signal, pid, err)
	}
	return nil
}

// ResizeConsole resizes the pty of a container process, or of a utility VM
// (external) process on the null container id. After the process has
// exited it is a silent no-op.
func (h *Host) ResizeConsole(ctx context.Context, id string, pid uint32, height, width uint16) error {
	var p *process
	if id == prot.NullContainerID {
		e, ok := h.externals.get(pid)
		if !ok {
			return prot.Errorf(prot.HrErrNotFound, "external process %d not found", pid)
		}
		p = e
	} else {
		c, err := h.containers.lookup(id)
		if err != nil {
			return err
		}
		if c.isInit(pid) {
			p = c.init
		} else if e, ok := c.execs.get(pid); ok {
			p = e
		} else {
			return prot.Errorf(prot.HrErrNotFound, "process %d not found in container %s", pid, id)
		}
	}
	if !p.console {
		return prot.Errorf(prot.HrFail, "process %d has no console", pid)
	}
	if p.relay == nil {
		// A retained exit: the pty is long gone.
		return nil
	}
	return p.relay.Resize(height, width)
}

// GetProperties reports the process list and statistics.
func (h *Host) GetProperties(ctx context.Context, id string, q *prot.PropertyQuery) (*prot.PropertiesV2, error) {
	if err := h.policy.GetProperties(ctx); err != nil {
		return nil, err
	}
	c, err := h.containers.lookup(id)
	if err != nil {
		return nil, err
	}
	props := &prot.PropertiesV2{}
	for _, t := range q.PropertyTypes {
		switch t {
		case prot.PtProcessList:
			pids, err := h.processList(ctx, c)
			if err != nil {
				return nil, err
			}
			for _, pid := range pids {
				props.ProcessList = append(props.ProcessList, prot.ProcessDetails{ProcessID: pid})
			}
		case prot.PtStatistics:
			if h.cfg.Stats == nil {
				return nil, prot.Errorf(prot.HrFail, "statistics are not available")
			}
			// The cgroup exists once the runtime created the container.
			if err := c.rc.Materialize(ctx); err != nil {
				return nil, runtimeError(fmt.Sprintf("statistics of %s", id), err)
			}
			m, err := h.cfg.Stats(c.cgroupPath)
			if err != nil {
				return nil, prot.Errorf(prot.HrFail, "statistics of %s: %v", id, err)
			}
			props.Metrics = m
		default:
			h.log.WithField("type", t).Info("ignoring unsupported property type")
		}
	}
	return props, nil
}

func (h *Host) processList(ctx context.Context, c *container) ([]uint32, error) {
	seen := map[uint32]bool{}
	var out []uint32
	if c.getState() != stateTerminated {
		pids, err := c.rc.Ps(ctx)
		if err != nil {
			return nil, runtimeError(fmt.Sprintf("process list of %s", c.id), err)
		}
		for _, p := range pids {
			if p > 0 && p <= 0xFFFFFFFF && !seen[uint32(p)] {
				seen[uint32(p)] = true
				out = append(out, uint32(p))
			}
		}
	}
	for _, p := range c.execs.all() {
		// An exited process's pid may already belong to another.
		if seen[p.pid] || p.exited() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.pid)); err == nil {
			seen[p.pid] = true
			out = append(out, p.pid)
		}
	}
	return out, nil
}

// DeleteContainerState removes a container's runtime state, bundle and
// scratch, and forgets it (docs/lifecycle.md, "DeleteContainerState").
func (h *Host) DeleteContainerState(ctx context.Context, id string) error {
	confidential := h.policy.Confidential()
	if confidential {
		if err := policy.ValidContainerID(id); err != nil {
			return prot.NewError(prot.HrFail, fmt.Errorf("DeleteContainerState: %w", err))
		}
	}
	if err := h.policy.CheckConsistent(); err != nil {
		return err
	}
	c, err := h.containers.lookup(id)
	if err != nil {
		return err
	}
	if confidential && c.getState() == stateRunning {
		// A running container's mounts would go while the policy still
		// counts it as running: as the reference, refused.
		return prot.Errorf(prot.HrFail, "denied deleting state of running container %s in confidential mode", id)
	}
	log := h.log.WithField("cid", id)
	c.markDeleted()
	var errs []error
	if c.kind == oci.KindSandbox {
		if err := unmountPodRoot(c.root); err != nil {
			errs = append(errs, err)
		}
	}
	// A container still running is killed rather than left behind.
	if err := c.rc.Delete(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("runtime delete: %w", err))
	}
	c.initRelay.Close()
	_ = c.closeTee()
	for _, p := range c.execs.all() {
		if p.relay != nil {
			p.relay.Close()
		}
	}
	// A v1 host removes the layers first; a v2 host after this call. A
	// rootfs still mounted inside the bundle is unmounted here so that
	// removing the bundle never reaches into it.
	if rootfs := h.rootfsOf(c); checkUnder("rootfs", rootfs, bundleRoots) == nil {
		if mounted, _ := mount.IsMountPoint(rootfs); mounted {
			if err := overlay.Unmount(ctx, rootfs); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := overlay.UnbindBundle(h.log.WithField("cid", c.id), c.scratch, h.rootfsOf(c)); err != nil {
		errs = append(errs, err)
	}
	if c.scratch != "" {
		if err := removeOwned(c.scratch, scratchRoots); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeOwned(c.bundle, bundleRoots); err != nil {
		errs = append(errs, err)
	}
	if c.kind == oci.KindSandbox && c.root != c.bundle {
		// A virtual pod's root (pod files, logs) lies beside the bundle.
		if err := removeOwned(c.root, bundleRoots); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.HasPrefix(c.bundle, BundleRootV2+"/") && c.kind == oci.KindSandbox {
		_ = os.Remove(filepath.Dir(c.bundle))
	}
	// Forget it whatever failed above.
	if h.cfg.Network != nil && c.nsID != "" && c.kind != oci.KindWorkload {
		h.cfg.Network.RemoveNamespace(c.nsID)
	}
	if c.kind != oci.KindStandalone {
		h.pods.leave(c.sandboxID, c.id)
	}
	h.containers.remove(c)
	if len(errs) > 0 {
		err := errors.Join(errs...)
		log.WithError(err).Warn("container deleted with errors")
		return prot.NewError(prot.HrFail, fmt.Errorf("delete %s: %w", id, err))
	}
	log.Info("container deleted")
	return nil
}

// removeOwned removes p recursively if it lies below one of roots, without
// ever descending into a mount point below it (a container's rootfs overlay
// or a scratch disk mounted on a bundle): those, and the directories that
// lead to them, are left in place.
func removeOwned(p string, roots []string) error {
	if err := checkUnder("path", p, roots); err != nil {
		return err
	}
	mounts, err := mount.MountsUnder(p)
	if err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	if len(mounts) == 0 {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		return nil
	}
	keep := make(map[string]bool, len(mounts))
	for _, m := range mounts {
		keep[m] = true
	}
	if err := removeAround(p, keep); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// removeAround removes dir's contents except mount points (keep) and the
// directories above them; dir itself goes too when nothing is kept in it.
// It reports whether dir was removed.
func removeAround(dir string, keep map[string]bool) error {
	if keep[dir] {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range entries {
		child := filepath.Join(dir, e.Name())
		if e.IsDir() && hasKeptBelow(child, keep) {
			errs = append(errs, removeAround(child, keep))
			continue
		}
		if err := os.RemoveAll(child); err != nil {
			errs = append(errs, err)
		}
	}
	if !hasKeptBelow(dir, keep) {
		errs = append(errs, os.Remove(dir))
	}
	return errors.Join(errs...)
}

func hasKeptBelow(dir string, keep map[string]bool) bool {
	for m := range keep {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			return true
		}
	}
	return false
}

// unmountTree unmounts every mount at or below dir, deepest first, and
// removes dir.
func unmountTree(dir string) error {
	mounts, err := mount.MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool { return errors.Is(err, network.ErrNamespaceNotFound) }
