package uvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
	"github.com/opengcs/opengcs/service/gcs/stdio"
)

// ExecuteProcess starts a container's init, an exec'd process, or an external
// process in the utility VM (docs/protocol.md, "ExecuteProcess").
func (h *Host) ExecuteProcess(ctx context.Context, id string, params *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error) {
	if params.IsExternal || id == prot.NullContainerID {
		return h.startExternal(ctx, params, ports)
	}
	c, err := h.containers.lookup(id)
	if err != nil {
		return 0, err
	}
	if params.OCIProcess == nil {
		return h.startInit(ctx, c, params, ports)
	}
	return h.execProcess(ctx, c, params, ports)
}

// startInit connects the init's stdio and runs runc start (docs/lifecycle.md,
// "Init process").
func (h *Host) startInit(ctx context.Context, c *container, params *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error) {
	// Held throughout, so that an init exiting meanwhile is seen by
	// watchInit either as never handed to the host or as handed.
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if !c.state.CompareAndSwap(int32(stateCreated), int32(stateRunning)) {
		return 0, prot.Errorf(prot.HrVmcomputeInvalidState, "container %s cannot start its init in state %s", c.id, c.getState())
	}
	streams, err := policedStreams(params, c.stdioDenied, false)
	if err != nil {
		c.setState(stateCreated)
		return 0, err
	}
	conns, err := stdio.Connect(ctx, h.log.WithField("cid", c.id), h.cfg.Transport, ports, streams)
	if err != nil {
		c.setState(stateCreated)
		return 0, prot.Errorf(prot.HrFail, "container %s init stdio: %v", c.id, err)
	}
	// The init's output streams survive a host-side reconnect
	// (docs/protocol.md, "Reconnect and replay"): they are re-dialled on
	// their ports and the recent output replayed. Exec'd and external
	// processes do not reconnect.
	conns.EnableReconnect(h.cfg.Transport, ports)
	if c.teeLog != "" {
		// Appended to, never truncated: a file of the pod's logs/ may
		// outlive a container (as the reference opens it).
		f, err := os.OpenFile(c.teeLog, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o666)
		if err != nil {
			conns.Close()
			c.setState(stateCreated)
			return 0, prot.Errorf(prot.HrFail, "container %s tee log: %v", c.id, err)
		}
		c.teeFile.Store(f)
		conns.Tee(f)
	}
	if err := c.initRelay.Start(conns); err != nil {
		conns.Close()
		_ = c.closeTee()
		c.setState(stateCreated)
		return 0, prot.Errorf(prot.HrFail, "container %s init stdio relay: %v", c.id, err)
	}
	if err := c.rc.Start(ctx); err != nil {
		c.initRelay.Close()
		_ = c.closeTee()
		c.setState(stateCreated)
		return 0, runtimeError(fmt.Sprintf("start %s", c.id), err)
	}
	if c.deferred {
		// The init was created by this Start: publish its pid.
		pid := uint32(c.rc.Pid())
		c.init.pid = pid
		c.initPid.Store(pid)
	}
	c.initHanded = true
	pid := c.initPid.Load()
	h.log.WithFields(logrus.Fields{"cid": c.id, "pid": pid}).Info("container started")
	return pid, nil
}

// execProcess runs a process in a running container (docs/lifecycle.md,
// "Exec'd processes").
func (h *Host) execProcess(ctx context.Context, c *container, params *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error) {
	if c.getState() != stateRunning {
		return 0, prot.Errorf(prot.HrVmcomputeInvalidState, "container %s is %s; exec needs it running", c.id, c.getState())
	}
	proc := *params.OCIProcess
	if err := h.prepareExecUser(c, &proc); err != nil {
		return 0, err
	}
	if c.spec.Process != nil {
		proc.Rlimits = c.spec.Process.Rlimits
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	grant, err := h.policy.ExecInContainer(ctx, c.id, h.rootfsOf(c), &proc)
	if err != nil {
		return 0, err
	}
	streams, err := policedStreams(params, !grant.AllowStdio, proc.Terminal)
	if err != nil {
		return 0, err
	}

	conns, err := stdio.Connect(ctx, h.log.WithField("cid", c.id), h.cfg.Transport, ports, streams)
	if err != nil {
		return 0, prot.Errorf(prot.HrFail, "exec in %s: stdio: %v", c.id, err)
	}
	var relay stdio.Relay
	var rp runtime.Process
	if proc.Terminal {
		rp, err = c.rc.Exec(ctx, &proc, runtime.StdioFiles{})
		if err != nil {
			conns.Close()
			return 0, runtimeError(fmt.Sprintf("exec in %s", c.id), err)
		}
		tty, terr := stdio.NewTtyRelay(rp.Console(), h.cfg.StdioOptions...)
		if terr != nil {
			_ = rp.Signal(syscall.SIGKILL)
			conns.Close()
			return 0, prot.Errorf(prot.HrFail, "exec in %s: console relay: %v", c.id, terr)
		}
		relay = tty
	} else {
		pipes, perr := stdio.NewPipeRelay(stdio.StreamsOf(params), h.cfg.StdioOptions...)
		if perr != nil {
			conns.Close()
			return 0, prot.Errorf(prot.HrFail, "exec in %s: stdio pipes: %v", c.id, perr)
		}
		cf := pipes.ChildFiles()
		rp, err = c.rc.Exec(ctx, &proc, runtime.StdioFiles{Stdin: cf.In, Stdout: cf.Out, Stderr: cf.Err})
		_ = pipes.CloseChildEnds()
		if err != nil {
			pipes.Close()
			conns.Close()
			return 0, runtimeError(fmt.Sprintf("exec in %s", c.id), err)
		}
		relay = pipes
	}
	if err := relay.Start(conns); err != nil {
		conns.Close()
		h.log.WithError(err).WithField("cid", c.id).Warn("exec stdio relay did not start")
	}
	pid := uint32(rp.Pid())
	p := newProcess(pid, relay, func(sig int) error { return rp.Signal(syscall.Signal(sig)) })
	p.args = proc.Args
	c.execs.add(p)
	log := h.log.WithFields(logrus.Fields{"cid": c.id, "pid": pid})
	log.Info("exec process started")
	go func() {
		code, err := rp.Wait(context.Background())
		if err != nil {
			log.WithError(err).Warn("waiting for exec process failed")
			code = 255
		}
		relay.ProcessExited()
		if err := relay.Wait(); err != nil {
			log.WithError(err).Debug("exec stdio relay ended")
		}
		log.WithField("exitCode", code).Info("exec process exited")
		p.finish(uint32(code))
	}()
	return pid, nil
}

// prepareExecUser resolves a user name against the container's rootfs, or
// inherits the container's resolved user when the spec named one.
func (h *Host) prepareExecUser(c *container, proc *specs.Process) error {
	if proc.User.Username != "" {
		uid, gid, err := oci.ResolveUser(h.rootfsOf(c), proc.User.Username)
		if err != nil {
			return prot.Errorf(prot.HrFail, "exec in %s: user %q: %v", c.id, proc.User.Username, err)
		}
		proc.User.UID, proc.User.GID, proc.User.Username = uid, gid, ""
		return nil
	}
	if c.userFromName {
		u := specUser(c.spec)
		proc.User.UID, proc.User.GID = u.UID, u.GID
	}
	return nil
}

func (h *Host) rootfsOf(c *container) string {
	p := c.spec.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.bundle, p)
	}
	return p
}
