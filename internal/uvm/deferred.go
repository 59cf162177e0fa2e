package uvm

import (
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/internal/safepath"
)

// canDefer reports whether the runtime may defer creating c until its init
// is started (docs/containers.md, "Deferred create"): nothing between
// Create and the init's ExecuteProcess needs its init or namespaces. A
// sandbox's namespaces are joined by its workloads and may receive NICs,
// a standalone container with a network namespace record gets its NICs
// moved into the init's namespace at Create, and a terminal init's pty is
// relayed from Create on: those are created at once. So is a container
// whose executable is not found in its rootfs, so that the commonest
// create failure is still reported by Create.
func (h *Host) canDefer(c *container) bool {
	if h.cfg.EagerCreate || c.spec.Process.Terminal || c.kind == oci.KindSandbox {
		return false
	}
	if c.kind != oci.KindWorkload && c.nsID != "" && h.cfg.Network != nil {
		return false
	}
	return executableInRootfs(h.rootfsOf(c), c.spec.Process)
}

// executableInRootfs reports whether the process's executable is a regular
// executable file in rootfs, looked up as runc's init looks it up: a name
// with a slash relative to the working directory, any other through the
// PATH of the process's environment. It answers false when unsure
// (relative PATH entries, no PATH): a mount from the spec may still
// provide the file, and then the eager create decides.
func executableInRootfs(rootfs string, p *specs.Process) bool {
	if p == nil || len(p.Args) == 0 || p.Args[0] == "" {
		return false
	}
	name := p.Args[0]
	var candidates []string
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			cwd := p.Cwd
			if cwd == "" {
				cwd = "/"
			}
			name = path.Join(cwd, name)
		}
		candidates = []string{name}
	} else {
		for _, dir := range strings.Split(envValue(p.Env, "PATH"), ":") {
			if path.IsAbs(dir) {
				candidates = append(candidates, path.Join(dir, name))
			}
		}
	}
	for _, cand := range candidates {
		full, err := safepath.Join(rootfs, cand)
		if err != nil {
			continue
		}
		if st, err := os.Stat(full); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return true
		}
	}
	return false
}

// envValue returns the last value of key in a KEY=value list.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
