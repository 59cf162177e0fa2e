package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Names of the per-pod network files in a sandbox root.
const (
	HostnameFile = "hostname"
	HostsFile    = "hosts"
	ResolvFile   = "resolv.conf"
)

// maxHostname is the longest hostname the guest accepts.
const maxHostname = 255

// hostnameByte reports whether c may appear in a hostname the guest accepts:
// nothing that could break out of a line of /etc/hosts. (A regular
// expression with a {0,255} repeat would cost every start of the binary,
// including each container init re-exec, milliseconds to compile.)
func hostnameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

// ValidateHostname checks a hostname from a spec: at most 255 of
// [A-Za-z0-9_.-]. The empty string is accepted here (it means "use the
// UVM's hostname"); a name that is actually written must be non-empty,
// which WriteSandboxFiles checks.
func ValidateHostname(name string) error {
	if len(name) > maxHostname {
		return fmt.Errorf("%w %q: longer than %d bytes", ErrInvalidHostname, name, maxHostname)
	}
	for i := 0; i < len(name); i++ {
		if !hostnameByte(name[i]) {
			return fmt.Errorf("%w %q: byte %q at %d is not one of [A-Za-z0-9_.-]", ErrInvalidHostname, name, name[i], i)
		}
	}
	return nil
}

// KernelNoHostname is what the kernel reports as the hostname of a system
// whose hostname was never set, as in a utility VM booted without one. The
// reference guest writes it into the pod files as it is (it takes
// os.Hostname() for an empty spec hostname, upstream
// internal/guest/runtime/hcsv2/sandbox_container.go and
// standalone_container.go), so a written hostname may be this value too.
const KernelNoHostname = "(none)"

// validateWrittenHostname checks a hostname that goes into the pod files:
// non-empty, and either a valid spec hostname or KernelNoHostname (which
// cannot break a line of /etc/hosts either).
func validateWrittenHostname(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidHostname)
	}
	if name == KernelNoHostname {
		return nil
	}
	return ValidateHostname(name)
}

// HostsContent is the /etc/hosts the guest writes for hostname.
func HostsContent(hostname string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1 localhost\n")
	if first, _, dotted := strings.Cut(hostname, "."); dotted {
		fmt.Fprintf(&b, "127.0.0.1 %s %s\n", hostname, first)
	} else {
		fmt.Fprintf(&b, "127.0.0.1 %s\n", hostname)
	}
	b.WriteString("\n# The following lines are desirable for IPv6 capable hosts\n")
	b.WriteString("::1     ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0 ip6-localnet\n")
	b.WriteString("ff00::0 ip6-mcastprefix\n")
	b.WriteString("ff02::1 ip6-allnodes\n")
	b.WriteString("ff02::2 ip6-allrouters\n")
	return b.Bytes()
}

// HostnameContent is the hostname file for hostname.
func HostnameContent(hostname string) []byte { return []byte(hostname + "\n") }

// WriteSandboxFiles writes <root>/hostname, <root>/hosts and, when dns is
// not nil, <root>/resolv.conf (all 0644), each atomically. The hostname is
// validated (and must be non-empty) before anything is written.
func WriteSandboxFiles(root, hostname string, dns *DNS) error {
	if err := validateWrittenHostname(hostname); err != nil {
		return err
	}
	var resolv []byte
	if dns != nil {
		var err error
		if resolv, err = dns.ResolvConf(); err != nil {
			return err
		}
	}
	if err := WriteFileAtomic(filepath.Join(root, HostnameFile), HostnameContent(hostname), 0o644); err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(root, HostsFile), HostsContent(hostname), 0o644); err != nil {
		return err
	}
	if dns != nil {
		if err := WriteFileAtomic(filepath.Join(root, ResolvFile), resolv, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteFileAtomic replaces path with data: it writes a temporary file in the
// same directory, sets mode perm exactly (no umask), syncs it and renames it
// over path, so readers (and bind mounts made later) never see a partial
// file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteConfig creates bundle (0700) if needed and writes the final spec to
// <bundle>/config.json: JSON without HTML escaping and with a trailing
// newline (docs/lifecycle.md, "Create, step by step": Bundle).
func WriteConfig(bundle string, spec *specs.Spec) error {
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return fmt.Errorf("create bundle %s: %w", bundle, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(spec); err != nil {
		return fmt.Errorf("encode %s/config.json: %w", bundle, err)
	}
	return WriteFileAtomic(filepath.Join(bundle, "config.json"), b.Bytes(), 0o644)
}
