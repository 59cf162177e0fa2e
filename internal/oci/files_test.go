package oci

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

const ipv6Hosts = "\n# The following lines are desirable for IPv6 capable hosts\n" +
	"::1     ip6-localhost ip6-loopback\n" +
	"fe00::0 ip6-localnet\n" +
	"ff00::0 ip6-mcastprefix\n" +
	"ff02::1 ip6-allnodes\n" +
	"ff02::2 ip6-allrouters\n"

func TestHostsContent(t *testing.T) {
	tests := []struct{ name, want string }{
		{"pod1", "127.0.0.1 localhost\n127.0.0.1 pod1\n" + ipv6Hosts},
		{"web.example.com", "127.0.0.1 localhost\n127.0.0.1 web.example.com web\n" + ipv6Hosts},
		{"a.", "127.0.0.1 localhost\n127.0.0.1 a. a\n" + ipv6Hosts},
	}
	for _, tc := range tests {
		if got := string(HostsContent(tc.name)); got != tc.want {
			t.Errorf("HostsContent(%q) =\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}

func TestValidateHostname(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"", true},
		{"pod-1_a.b", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"a b", false},
		{"a\nb", false},
		{"a\n127.0.0.1 evil", false},
		{"héllo", false},
		{"a/b", false},
	}
	for _, tc := range tests {
		err := ValidateHostname(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateHostname(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidHostname) {
			t.Errorf("ValidateHostname(%q) error %v does not wrap ErrInvalidHostname", tc.name, err)
		}
	}
}

func TestDNSFromAdapters(t *testing.T) {
	tests := []struct {
		name     string
		adapters []prot.LCOWNetworkAdapter
		want     DNS
		wantErr  error
		resolv   string
	}{
		{name: "none", resolv: ""},
		{
			name: "merge, trim, lower-case, de-dup in order",
			adapters: []prot.LCOWNetworkAdapter{
				{DNSSuffix: "Corp.Example.com, svc.local", DNSServerList: "10.0.0.10, 10.0.0.11"},
				{DNSSuffix: "svc.local,corp.example.COM,,b.local", DNSServerList: "10.0.0.11,FE80::1"},
			},
			want:   DNS{Search: []string{"corp.example.com", "svc.local", "b.local"}, Servers: []string{"10.0.0.10", "10.0.0.11", "fe80::1"}},
			resolv: "search corp.example.com svc.local b.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\nnameserver fe80::1\n",
		},
		{
			name:     "servers only",
			adapters: []prot.LCOWNetworkAdapter{{DNSServerList: "1.1.1.1"}},
			want:     DNS{Servers: []string{"1.1.1.1"}},
			resolv:   "nameserver 1.1.1.1\n",
		},
		{
			name:     "six search domains is fine",
			adapters: []prot.LCOWNetworkAdapter{{DNSSuffix: "a,b,c,d,e,f"}, {DNSSuffix: "a,F"}},
			want:     DNS{Search: []string{"a", "b", "c", "d", "e", "f"}},
			resolv:   "search a b c d e f\n",
		},
		{
			name:     "seven search domains",
			adapters: []prot.LCOWNetworkAdapter{{DNSSuffix: "a,b,c"}, {DNSSuffix: "d,e,f,g"}},
			wantErr:  ErrTooManySearchDomains,
		},
		{
			name:     "injected line",
			adapters: []prot.LCOWNetworkAdapter{{DNSServerList: "1.1.1.1\nnameserver 6.6.6.6"}},
			wantErr:  ErrInvalidDNSValue,
		},
		{
			name:     "inner space",
			adapters: []prot.LCOWNetworkAdapter{{DNSSuffix: "a b"}},
			wantErr:  ErrInvalidDNSValue,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DNSFromAdapters(tc.adapters)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("DNSFromAdapters = %+v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Search, "|") != strings.Join(tc.want.Search, "|") ||
				strings.Join(got.Servers, "|") != strings.Join(tc.want.Servers, "|") {
				t.Fatalf("DNSFromAdapters = %+v, want %+v", got, tc.want)
			}
			b, err := got.ResolvConf()
			if err != nil || string(b) != tc.resolv {
				t.Fatalf("ResolvConf = %q, %v; want %q", b, err, tc.resolv)
			}
		})
	}
	if _, err := (DNS{Search: strings.Split("a,b,c,d,e,f,g", ",")}).ResolvConf(); !errors.Is(err, ErrTooManySearchDomains) {
		t.Errorf("ResolvConf with 7 search domains = %v", err)
	}
}

func TestWriteSandboxFiles(t *testing.T) {
	dns := &DNS{Search: []string{"svc.local"}, Servers: []string{"10.0.0.10"}}
	tests := []struct {
		name     string
		hostname string
		dns      *DNS
		files    map[string]string // "" content means absent
		wantErr  error
	}{
		{
			name: "all files", hostname: "pod.svc", dns: dns,
			files: map[string]string{
				"hostname":    "pod.svc\n",
				"hosts":       "127.0.0.1 localhost\n127.0.0.1 pod.svc pod\n" + ipv6Hosts,
				"resolv.conf": "search svc.local\nnameserver 10.0.0.10\n",
			},
		},
		{
			name: "empty DNS writes an empty resolv.conf", hostname: "p", dns: &DNS{},
			files: map[string]string{"hostname": "p\n", "resolv.conf": ""},
		},
		{
			name: "nil DNS writes no resolv.conf", hostname: "p", dns: nil,
			files: map[string]string{"hostname": "p\n"},
		},
		{
			name: "kernel without a hostname", hostname: "(none)", dns: nil,
			files: map[string]string{
				"hostname": "(none)\n",
				"hosts":    "127.0.0.1 localhost\n127.0.0.1 (none)\n" + ipv6Hosts,
			},
		},
		{name: "empty hostname", hostname: "", dns: dns, wantErr: ErrInvalidHostname},
		{name: "parenthesised name other than (none)", hostname: "(x)", dns: dns, wantErr: ErrInvalidHostname},
		{name: "bad hostname", hostname: "a;b", dns: dns, wantErr: ErrInvalidHostname},
		{name: "bad DNS", hostname: "p", dns: &DNS{Search: strings.Split("1,2,3,4,5,6,7", ",")}, wantErr: ErrTooManySearchDomains},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			err := WriteSandboxFiles(root, tc.hostname, tc.dns)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("WriteSandboxFiles = %v, want %v", err, tc.wantErr)
				}
				if ents, _ := os.ReadDir(root); len(ents) != 0 {
					t.Fatalf("files written despite the error: %v", ents)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.files {
				p := filepath.Join(root, name)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != want {
					t.Errorf("%s = %q, want %q", name, b, want)
				}
				fi, _ := os.Stat(p)
				if fi.Mode().Perm() != 0o644 {
					t.Errorf("%s mode %v, want 0644", name, fi.Mode().Perm())
				}
			}
			_, err = os.Stat(filepath.Join(root, "resolv.conf"))
			if tc.dns == nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("resolv.conf exists with nil DNS: %v", err)
			}
			ents, _ := os.ReadDir(root)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file left behind: %s", e.Name())
				}
			}
		})
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts")
	if err := os.WriteFile(p, []byte("old content that is longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Hold the old file open: an atomic replace leaves it intact (a new
	// inode), an in-place rewrite would change what it reads.
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := WriteFileAtomic(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("content %q", b)
	}
	buf := make([]byte, 64)
	n, _ := old.Read(buf)
	if string(buf[:n]) != "old content that is longer" {
		t.Fatalf("old inode was modified: %q", buf[:n])
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestWriteConfig(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "b")
	spec := &specs.Spec{Version: "1.0.2", Process: &specs.Process{Args: []string{"sh", "-c", "a<b && c>d"}}}
	if err := WriteConfig(bundle, spec); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "}\n") || !strings.Contains(string(b), `"a<b && c>d"`) {
		t.Fatalf("config.json not newline-terminated or HTML-escaped: %s", b)
	}
	var back specs.Spec
	if err := json.Unmarshal(b, &back); err != nil || back.Process.Args[2] != "a<b && c>d" {
		t.Fatalf("round trip: %v %+v", err, back.Process)
	}
	if fi, _ := os.Stat(bundle); fi.Mode().Perm() != 0o700 {
		t.Errorf("bundle mode %v, want 0700", fi.Mode().Perm())
	}
}
