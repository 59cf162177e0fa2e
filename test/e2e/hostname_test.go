package e2e

import (
	"path/filepath"
	"testing"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/testutil"
)

// newEnvOpts is newEnv with gcstest options.
func newEnvOpts(t *testing.T, o gcstest.Options) *env {
	t.Helper()
	g := gcstest.Start(t, o)
	c := connect(t, g)
	layer := filepath.Join(t.TempDir(), "layer")
	if err := testutil.BusyboxRootfs(layer); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, g: g, c: c, layer: layer}
}

// TestKernelHostnameNone runs the gcs in a UVM whose kernel hostname was
// never set: the kernel reports "(none)". A sandbox and a standalone
// container with an empty spec hostname get that name in their hostname
// and hosts files, as the reference writes them (it uses os.Hostname()).
func TestKernelHostnameNone(t *testing.T) {
	e := newEnvOpts(t, gcstest.Options{Hostname: "(none)"})
	const hosts = "127.0.0.1 localhost\n127.0.0.1 (none)\n" +
		"\n# The following lines are desirable for IPv6 capable hosts\n" +
		"::1     ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"

	t.Run("sandbox", func(t *testing.T) {
		e := e.podForTest(t)
		sid := newID(t)
		s := e.sandboxSpec(sid, "6a0c1e2f-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "")
		s.Annotations["io.microsoft.cri.skip-pod-networking"] = "true"
		e.create(sid, s)
		for name, want := range map[string]string{"hostname": "(none)\n", "hosts": hosts} {
			p, err := e.g.Root(filepath.Join(bundleOf(sid), name))
			if err != nil {
				t.Fatal(err)
			}
			if got := podReadFile(t, p); got != want {
				t.Errorf("sandbox %s = %q, want %q", name, got, want)
			}
		}
	})
	t.Run("standalone", func(t *testing.T) {
		e := e.podForTest(t)
		id := newID(t)
		e.create(id, e.spec("sleep", "1000000"))
		e.startInit(id)
		out := e.podMustSh(id, "cat /etc/hostname /etc/hosts")
		if want := "(none)\n" + hosts; out != want {
			t.Errorf("standalone /etc/hostname + /etc/hosts = %q, want %q", out, want)
		}
	})
}
