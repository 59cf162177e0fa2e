package etcfiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateHostname(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"sandbox", true},
		{"my-pod_1.example.com", true},
		{"A.B-C_D", true},
		{"0123456789", true},
		{strings.Repeat("a", MaxHostnameLen), true},
		{"", false},
		{strings.Repeat("a", MaxHostnameLen+1), false},
		{"has space", false},
		{"slash/name", false},
		{"new\nline", false},
		{"colon:name", false},
		{"ünicode", false},
		{"star*", false},
	}
	for _, tt := range tests {
		err := ValidateHostname(tt.name)
		if tt.ok && err != nil {
			t.Errorf("ValidateHostname(%q) = %v, want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidHostname) {
			t.Errorf("ValidateHostname(%q) = %v, want ErrInvalidHostname", tt.name, err)
		}
	}
}

func TestHostsContent(t *testing.T) {
	const tail = "\n# The following lines are desirable for IPv6 capable hosts\n" +
		"::1     ip6-localhost ip6-loopback\n" +
		"fe00::0 ip6-localnet\n" +
		"ff00::0 ip6-mcastprefix\n" +
		"ff02::1 ip6-allnodes\n" +
		"ff02::2 ip6-allrouters\n"
	tests := []struct {
		name, want string
	}{
		{"pod", "127.0.0.1 localhost\n127.0.0.1 pod\n" + tail},
		{"pod.example.com", "127.0.0.1 localhost\n127.0.0.1 pod.example.com pod\n" + tail},
	}
	for _, tt := range tests {
		if got := HostsContent(tt.name); got != tt.want {
			t.Errorf("HostsContent(%q) =\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestResolvConfContent(t *testing.T) {
	tests := []struct {
		name              string
		searches, servers []string
		want              string
		err               error
	}{
		{"empty", nil, nil, "", nil},
		{"servers only", nil, []string{"10.0.0.10", "10.0.0.11"}, "nameserver 10.0.0.10\nnameserver 10.0.0.11\n", nil},
		{"both", []string{"svc.cluster.local", "cluster.local"}, []string{"10.0.0.10"},
			"search svc.cluster.local cluster.local\nnameserver 10.0.0.10\n", nil},
		{"six searches", []string{"a", "b", "c", "d", "e", "f"}, nil, "search a b c d e f\n", nil},
		{"seven searches", []string{"a", "b", "c", "d", "e", "f", "g"}, nil, "", ErrTooManySearchDomains},
	}
	for _, tt := range tests {
		got, err := ResolvConfContent(tt.searches, tt.servers)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
		if got != tt.want {
			t.Errorf("%s: content = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMergeList(t *testing.T) {
	var got []string
	got = MergeList(got, " Svc.Cluster.Local ,cluster.local,,")
	got = MergeList(got, "cluster.local, example.com")
	got = MergeList(got, "")
	want := []string{"svc.cluster.local", "cluster.local", "example.com"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("MergeList = %q, want %q", got, want)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	hostname := filepath.Join(dir, "hostname")
	hosts := filepath.Join(dir, "hosts")
	resolv := filepath.Join(dir, "resolv.conf")

	if err := os.WriteFile(hostname, []byte("old-content-that-is-longer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteHostname(hostname, "pod.local"); err != nil {
		t.Fatalf("WriteHostname: %v", err)
	}
	if err := WriteHosts(hosts, "pod.local"); err != nil {
		t.Fatalf("WriteHosts: %v", err)
	}
	if err := WriteResolvConf(resolv, []string{"local"}, []string{"10.0.0.10"}); err != nil {
		t.Fatalf("WriteResolvConf: %v", err)
	}
	checks := map[string]string{
		hostname: "pod.local\n",
		hosts:    HostsContent("pod.local"),
		resolv:   "search local\nnameserver 10.0.0.10\n",
	}
	for path, want := range checks {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != FileMode {
			t.Errorf("%s mode = %v, want %v", path, st.Mode().Perm(), FileMode)
		}
	}

	// Failures leave the old file alone and no temporary files behind.
	if err := WriteHostname(hostname, "bad name"); !errors.Is(err, ErrInvalidHostname) {
		t.Errorf("WriteHostname(bad) = %v, want ErrInvalidHostname", err)
	}
	if err := WriteResolvConf(resolv, []string{"1", "2", "3", "4", "5", "6", "7"}, nil); !errors.Is(err, ErrTooManySearchDomains) {
		t.Errorf("WriteResolvConf(7 searches) = %v, want ErrTooManySearchDomains", err)
	}
	if got, _ := os.ReadFile(hostname); string(got) != "pod.local\n" {
		t.Errorf("hostname changed by a failed write: %q", got)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing-dir", "f"), []byte("x"), FileMode); err == nil {
		t.Error("WriteFileAtomic into a missing directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only the three files", names)
	}
}
