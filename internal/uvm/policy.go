package uvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/policy"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/stdio"
)

// This file holds the guest's calls into the security policy seam
// (internal/policy) that are not storage: storage is guarded as a whole by
// policy.GuardStorage in New. docs/confidential.md lists every point.

// confidentialSettings refuses, in confidential mode, bundle and root paths
// other than the ones the host's confidential shim uses, and OCI hooks
// (which would run host-chosen programs in the guest), as the reference
// does before asking the policy.
func confidentialSettings(id string, settings *prot.VMHostedContainerSettingsV2) error {
	if err := policy.ValidContainerID(id); err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("Create: %w", err))
	}
	spec := settings.OCISpecification
	bundle := filepath.Join(BundleRootV1, id)
	if settings.OCIBundlePath != bundle {
		return prot.Errorf(prot.HrFail, "Create %s: OCIBundlePath %q must equal expected %q", id, settings.OCIBundlePath, bundle)
	}
	if root := filepath.Join(bundle, "rootfs"); spec.Root.Path != root {
		return prot.Errorf(prot.HrFail, "Create %s: OCISpecification.Root.Path %q must equal expected %q", id, spec.Root.Path, root)
	}
	if spec.Hooks != nil {
		return prot.Errorf(prot.HrFail, "Create %s: OCISpecification.Hooks must be nil", id)
	}
	return nil
}

// rootfsInUse reports whether a running container has its root file
// system at rootfs: in confidential mode the policy seam refuses to remove
// such an overlay.
func (h *Host) rootfsInUse(rootfs string) bool {
	rootfs = filepath.Clean(rootfs)
	return h.containers.any(func(c *container) bool {
		return c.getState() == stateRunning && c.spec != nil && c.spec.Root != nil && filepath.Clean(h.rootfsOf(c)) == rootfs
	})
}

// enforceCreate asks the policy about a container whose spec the guest has
// set up, applies the environment and capabilities it returns, and writes
// the security context directory into the root file system. Steps that
// leave something behind register their undo in rollback.
func (h *Host) enforceCreate(ctx context.Context, c *container, hostDevices []specs.LinuxDevice, rollback *undo) error {
	if c.hostNetwork {
		if err := h.policy.HostNetwork(ctx); err != nil {
			return err
		}
	}
	grant, err := h.policy.CreateContainer(ctx, policy.CreateRequest{
		ContainerID: c.id,
		SandboxID:   c.sandboxID,
		IsSandbox:   c.kind.String() == "sandbox",
		Spec:        c.spec,
		Devices:     hostDevices,
		GuestMounts: networkFileMounts(c),
	})
	if err != nil {
		return err
	}
	c.stdioDenied = !grant.AllowStdio
	if c.stdioDenied && c.spec.Process.Terminal {
		return prot.Errorf(prot.HrFail, "Create %s: a terminal is denied: the policy does not allow stdio access", c.id)
	}
	dir, err := h.policy.WriteSecurityContext(c.spec)
	if err != nil {
		return err
	}
	if dir != "" {
		rollback.add(func() { _ = os.RemoveAll(dir) })
	}
	return nil
}

// policedStreams returns the stdio streams a process may have: none when
// the policy denies it stdio access (its output is discarded, its input
// empty), or an error when it needs a terminal.
func policedStreams(params *prot.ProcessParameters, denied, terminal bool) (stdio.Streams, error) {
	if !denied {
		return stdio.StreamsOf(params), nil
	}
	if terminal {
		return stdio.Streams{}, prot.Errorf(prot.HrFail, "a process that needs a terminal is denied: the policy does not allow stdio access")
	}
	return stdio.Streams{}, nil
}

// StackDumpAllowed is asked by the DumpStacks handler before it dumps.
func (h *Host) StackDumpAllowed(ctx context.Context) error {
	return h.policy.DumpStacks(ctx)
}

// enforceSignal asks the policy about a signal to a container process,
// identified to it by whether it is the init and by its command line.
func (h *Host) enforceSignal(ctx context.Context, c *container, pid uint32, signal int) error {
	isInit := c.init != nil && c.init.pid == pid
	var args []string
	switch {
	case isInit && c.spec.Process != nil:
		args = c.spec.Process.Args
	default:
		p, ok := c.execs.get(pid)
		if !ok {
			return nil // not found: the caller says so
		}
		args = p.args
	}
	return h.policy.Signal(ctx, c.id, signal, isInit, args)
}

// networkFileMounts returns the bind mounts of the network files
// (/etc/hostname, /etc/hosts, /etc/resolv.conf) that the guest's setup
// added from the container's own root: the mounts the reference adds to a
// policy's defaults.
func networkFileMounts(c *container) []specs.Mount {
	var out []specs.Mount
	for _, m := range c.spec.Mounts {
		switch m.Destination {
		case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf":
			if strings.HasPrefix(m.Source, c.root+"/") || strings.HasPrefix(m.Source, c.bundle+"/") {
				out = append(out, m)
			}
		}
	}
	return out
}
