package policy

import (
	"context"
	"fmt"
	"strconv"
	"syscall"

	"github.com/Microsoft/hcsshim/pkg/annotations"
	"github.com/Microsoft/hcsshim/pkg/securitypolicy"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func sysSignal(n int) syscall.Signal { return syscall.Signal(n) }

// CreateRequest is a container creation as the policy sees it: the spec
// after the guest's own setup (its default and networking mounts added),
// and the devices the host asked for before the guest added any.
type CreateRequest struct {
	ContainerID string
	SandboxID   string
	IsSandbox   bool
	Spec        *specs.Spec
	Devices     []specs.LinuxDevice
	// GuestMounts are mounts the guest itself added to the spec (the
	// /etc/hostname, /etc/hosts and /etc/resolv.conf files it writes); as in
	// the reference, they join the policy's default mounts, so a policy
	// need not name them.
	GuestMounts []specs.Mount
}

// Grant is what an allowed process may have: whether its stdio may reach
// the host.
type Grant struct {
	AllowStdio bool
}

func annotationBool(a map[string]string, key string, def bool) bool {
	v, ok := a[key]
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def
	}
	return b
}

// CreateContainer checks a container creation (command, env, working
// directory, mounts, privileged, no-new-privileges, user and groups, umask,
// capabilities, seccomp profile) and applies what the policy returns: the
// environment variables to keep and the capabilities to grant replace the
// spec's.
func (e *Enforcer) CreateContainer(ctx context.Context, r CreateRequest) (Grant, error) {
	spec := r.Spec
	if spec.Process == nil || spec.Root == nil {
		return Grant{}, deny(fmt.Errorf("spec has no process or root"), "container creation denied due to policy")
	}
	var g Grant
	err := e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		if err := p.ExtendDefaultMounts(r.GuestMounts); err != nil {
			return deny(err, "container %s: default mounts", r.ContainerID)
		}
		user, groups, umask, err := p.GetUserInfo(spec.Process, spec.Root.Path)
		if err != nil {
			return deny(err, "container %s: user of the process", r.ContainerID)
		}
		var seccomp *specs.LinuxSeccomp
		if spec.Linux != nil {
			seccomp = spec.Linux.Seccomp
		}
		seccompHash, err := securitypolicy.MeasureSeccompProfile(seccomp)
		if err != nil {
			return deny(err, "container %s: seccomp profile", r.ContainerID)
		}
		privileged := annotationBool(spec.Annotations, annotations.LCOWPrivileged, false)
		noNewPrivileges := spec.Process.NoNewPrivileges
		env, caps, stdio, err := p.EnforceCreateContainerPolicyV2(ctx, r.ContainerID,
			spec.Process.Args, spec.Process.Env, spec.Process.Cwd, spec.Mounts, user,
			&securitypolicy.CreateContainerOptions{
				SandboxID:            r.SandboxID,
				Privileged:           &privileged,
				NoNewPrivileges:      &noNewPrivileges,
				Groups:               groups,
				Umask:                umask,
				Capabilities:         spec.Process.Capabilities,
				SeccompProfileSHA256: seccompHash,
				IsSandboxContainer:   r.IsSandbox,
				LinuxDevices:         r.Devices,
			})
		if err != nil {
			return deny(err, "container creation denied due to policy")
		}
		if env != nil {
			spec.Process.Env = []string(env)
		}
		if caps != nil {
			spec.Process.Capabilities = caps
		}
		g.AllowStdio = stdio
		return nil
	})
	return g, err
}

// ExecInContainer checks a process started in a running container and
// applies the environment and capabilities the policy returns to proc.
// rootfs is the container's root file system (for user and group names).
func (e *Enforcer) ExecInContainer(ctx context.Context, containerID, rootfs string, proc *specs.Process) (Grant, error) {
	var g Grant
	err := e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		user, groups, umask, err := p.GetUserInfo(proc, rootfs)
		if err != nil {
			return deny(err, "exec in %s: user of the process", containerID)
		}
		noNewPrivileges := proc.NoNewPrivileges
		env, caps, stdio, err := p.EnforceExecInContainerPolicyV2(ctx, containerID, proc.Args, proc.Env, proc.Cwd, user,
			&securitypolicy.ExecOptions{Groups: groups, Umask: umask, Capabilities: proc.Capabilities, NoNewPrivileges: &noNewPrivileges})
		if err != nil {
			return deny(err, "exec in container denied due to policy")
		}
		if env != nil {
			proc.Env = []string(env)
		}
		if caps != nil {
			proc.Capabilities = caps
		}
		g.AllowStdio = stdio
		return nil
	})
	return g, err
}

// ExecExternal checks a process started in the utility VM itself. env is
// KEY=VALUE pairs; it returns the ones the policy keeps.
func (e *Enforcer) ExecExternal(ctx context.Context, args, env []string, cwd string) ([]string, Grant, error) {
	var kept []string
	var g Grant
	err := e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		k, stdio, err := p.EnforceExecExternalProcessPolicy(ctx, args, env, cwd)
		if err != nil {
			return deny(err, "exec is denied due to policy")
		}
		kept, g.AllowStdio = env, stdio
		if k != nil {
			kept = []string(k)
		}
		return nil
	})
	return kept, g, err
}

// WriteSecurityContext writes the policy and UVM reference info into a new
// security-context-* directory of the container's root file system and adds
// UVM_SECURITY_CONTEXT_DIR to its environment, as the reference does,
// unless the spec's annotation turns it off. It returns the directory ("":
// nothing to write).
func (e *Enforcer) WriteSecurityContext(spec *specs.Spec) (string, error) {
	if !annotationBool(spec.Annotations, annotations.LCOWSecurityPolicyEnv, true) {
		return "", nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	dir, err := e.opts.WriteSecurityContextDir(spec)
	if err != nil {
		return "", deny(err, "security context")
	}
	return dir, nil
}
