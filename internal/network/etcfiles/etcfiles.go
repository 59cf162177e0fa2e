package etcfiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MaxHostnameLen is the longest host name accepted.
const MaxHostnameLen = 255

// MaxSearchDomains is the number of search domains resolv.conf(5) honours.
const MaxSearchDomains = 6

// FileMode is the permission of every file written here.
const FileMode os.FileMode = 0o644

// ValidateHostname checks that name is non-empty, at most MaxHostnameLen
// bytes long and made only of ASCII letters, digits, '_', '-' and '.'.
func ValidateHostname(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidHostname)
	}
	if len(name) > MaxHostnameLen {
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalidHostname, len(name), MaxHostnameLen)
	}
	for i := 0; i < len(name); i++ {
		if !hostnameByte(name[i]) {
			return fmt.Errorf("%w: %q has a forbidden character at offset %d", ErrInvalidHostname, name, i)
		}
	}
	return nil
}

func hostnameByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '_', c == '-', c == '.':
		return true
	}
	return false
}

// HostnameContent is the content of /etc/hostname for name.
func HostnameContent(name string) string { return name + "\n" }

// HostsContent is the content of /etc/hosts for a sandbox called name: the
// loopback entries, the name (plus its first label when it is dotted) on
// 127.0.0.1, and the usual IPv6 entries.
func HostsContent(name string) string {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	if first, _, dotted := strings.Cut(name, "."); dotted {
		fmt.Fprintf(&b, "127.0.0.1 %s %s\n", name, first)
	} else {
		fmt.Fprintf(&b, "127.0.0.1 %s\n", name)
	}
	b.WriteString("\n")
	b.WriteString("# The following lines are desirable for IPv6 capable hosts\n")
	b.WriteString("::1     ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0 ip6-localnet\n")
	b.WriteString("ff00::0 ip6-mcastprefix\n")
	b.WriteString("ff02::1 ip6-allnodes\n")
	b.WriteString("ff02::2 ip6-allrouters\n")
	return b.String()
}

// ResolvConfContent renders resolv.conf: one "search" line listing searches
// (when there are any), then one "nameserver" line per server. Inputs are
// used as given; see MergeList for building them.
func ResolvConfContent(searches, servers []string) (string, error) {
	if len(searches) > MaxSearchDomains {
		return "", fmt.Errorf("%w: %d given, at most %d", ErrTooManySearchDomains, len(searches), MaxSearchDomains)
	}
	var b strings.Builder
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	return b.String(), nil
}

// MergeList appends the items of the comma-separated list csv to dst, each
// trimmed and lower-cased, skipping empty items and items already present.
func MergeList(dst []string, csv string) []string {
	for _, item := range strings.Split(csv, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" || contains(dst, item) {
			continue
		}
		dst = append(dst, item)
	}
	return dst
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// WriteHostname validates name and writes path with HostnameContent.
func WriteHostname(path, name string) error {
	if err := ValidateHostname(name); err != nil {
		return err
	}
	return WriteFileAtomic(path, []byte(HostnameContent(name)), FileMode)
}

// WriteHosts validates name and writes path with HostsContent.
func WriteHosts(path, name string) error {
	if err := ValidateHostname(name); err != nil {
		return err
	}
	return WriteFileAtomic(path, []byte(HostsContent(name)), FileMode)
}

// WriteResolvConf writes path with ResolvConfContent(searches, servers).
func WriteResolvConf(path string, searches, servers []string) error {
	content, err := ResolvConfContent(searches, servers)
	if err != nil {
		return fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	return WriteFileAtomic(path, []byte(content), FileMode)
}

// WriteFileAtomic replaces path with data: it writes a temporary file in the
// same directory, syncs it, sets perm and renames it over path. On failure
// path is untouched and the temporary file is removed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return nil
}
