package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newSpec is a spec as the host sends it for a container whose rootfs is
// rootfs.
func newSpec(rootfs string, ann map[string]string) *specs.Spec {
	return &specs.Spec{
		Version:     specs.Version,
		Root:        &specs.Root{Path: rootfs},
		Process:     &specs.Process{Args: []string{"/pause"}, Cwd: "/"},
		Annotations: ann,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace}},
		},
		Windows: &specs.Windows{Network: &specs.WindowsNetwork{NetworkNamespace: "ABCDEF01-0000-0000-0000-000000000000"}},
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func findMount(spec *specs.Spec, dest string) *specs.Mount {
	for i := range spec.Mounts {
		if spec.Mounts[i].Destination == dest {
			return &spec.Mounts[i]
		}
	}
	return nil
}

func TestSetupSandbox(t *testing.T) {
	ctx := context.Background()
	dns := &DNS{Search: []string{"svc.local"}, Servers: []string{"10.0.0.10"}}
	tests := []struct {
		name       string
		id, sid    string
		hostname   string
		ann        map[string]string
		username   string
		dns        *DNS
		wantErr    error
		wantHost   string
		wantResolv *string
		wantUID    uint32
		wantGID    uint32
	}{
		{name: "spec hostname", id: "s1", sid: "s1", hostname: "mypod", dns: dns, wantHost: "mypod", wantResolv: ptr("search svc.local\nnameserver 10.0.0.10\n")},
		{name: "UVM hostname", id: "s1", sid: "s1", dns: dns, wantHost: "uvm-host", wantResolv: ptr("search svc.local\nnameserver 10.0.0.10\n")},
		{name: "invalid hostname", id: "s1", sid: "s1", hostname: "bad name", dns: dns, wantErr: ErrInvalidHostname},
		{name: "no namespace", id: "s1", sid: "s1", dns: nil, wantErr: ErrNoNetworkNamespace},
		{name: "no namespace, skip networking", id: "s1", sid: "s1", ann: map[string]string{AnnotationSkipPodNetworking: "TRUE"}, wantHost: "uvm-host"},
		{name: "no namespace, skip networking false", id: "s1", sid: "s1", ann: map[string]string{AnnotationSkipPodNetworking: "false"}, wantErr: ErrNoNetworkNamespace},
		{name: "username", id: "s1", sid: "s1", username: "www:staff", dns: dns, wantHost: "uvm-host", wantUID: 33, wantGID: 50, wantResolv: ptr("search svc.local\nnameserver 10.0.0.10\n")},
		{name: "unknown username", id: "s1", sid: "s1", username: "nobody", dns: dns, wantErr: ErrUserNotFound},
		{name: "virtual pod", id: "x", sid: "vp", ann: map[string]string{AnnotationVirtualPodID: "vp"}, dns: &DNS{}, wantHost: "uvm-host", wantResolv: ptr("")},
		{name: "rlimit", id: "s1", sid: "s1", ann: map[string]string{AnnotationRLimitCore: "10;20"}, dns: dns, wantHost: "uvm-host", wantResolv: ptr("search svc.local\nnameserver 10.0.0.10\n")},
		{name: "bad rlimit", id: "s1", sid: "s1", ann: map[string]string{AnnotationRLimitCore: "10"}, dns: dns, wantErr: ErrInvalidAnnotation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rootfs := makeRootfs(t, testPasswd, testGroup)
			root := filepath.Join(t.TempDir(), "sandbox")
			spec := newSpec(rootfs, tc.ann)
			spec.Hostname = tc.hostname
			spec.Process.User.Username = tc.username
			mountsBefore := slices.Clone(spec.Mounts)
			err := SetupSandbox(ctx, tc.id, tc.sid, root, spec, Options{UVMHostname: "uvm-host", DNS: tc.dns})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SetupSandbox = %v, want %v", err, tc.wantErr)
				}
				// Hostname and namespace checks come before any write.
				early := tc.wantErr == ErrInvalidHostname || tc.wantErr == ErrNoNetworkNamespace
				if _, err := os.Stat(root); early && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("sandbox root created despite %v", tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(root, "hostname")); got != tc.wantHost+"\n" {
				t.Errorf("hostname file %q, want %q", got, tc.wantHost+"\n")
			}
			if got := readFile(t, filepath.Join(root, "hosts")); got != string(HostsContent(tc.wantHost)) {
				t.Errorf("hosts file %q", got)
			}
			_, statErr := os.Stat(filepath.Join(root, "resolv.conf"))
			if tc.wantResolv == nil {
				if !errors.Is(statErr, os.ErrNotExist) {
					t.Errorf("resolv.conf written: %v", statErr)
				}
			} else if got := readFile(t, filepath.Join(root, "resolv.conf")); got != *tc.wantResolv {
				t.Errorf("resolv.conf %q, want %q", got, *tc.wantResolv)
			}
			if !slices.EqualFunc(spec.Mounts, mountsBefore, func(a, b specs.Mount) bool { return a.Destination == b.Destination && a.Source == b.Source }) {
				t.Errorf("sandbox mounts changed: %+v", spec.Mounts)
			}
			if want := "/pods/" + tc.sid + "/" + tc.id; spec.Linux.CgroupsPath != want {
				t.Errorf("cgroupsPath %q, want %q", spec.Linux.CgroupsPath, want)
			}
			if spec.Windows != nil {
				t.Errorf("windows not cleared")
			}
			if spec.Process.User.UID != tc.wantUID || spec.Process.User.GID != tc.wantGID {
				t.Errorf("user %d:%d, want %d:%d", spec.Process.User.UID, spec.Process.User.GID, tc.wantUID, tc.wantGID)
			}
			if v := tc.ann[AnnotationRLimitCore]; v != "" {
				if len(spec.Process.Rlimits) != 1 || spec.Process.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 10, Hard: 20}) {
					t.Errorf("rlimits %+v", spec.Process.Rlimits)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// testDevRoot builds a fake /dev with real device nodes: character devices
// with /dev/null's numbers, a block device, a console, a pts node (both
// skipped for privileged containers) and a symlink.
func testDevRoot(t *testing.T) (devRoot string, nullMajor, nullMinor int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/dev/null", &st); err != nil {
		t.Fatal(err)
	}
	nullMajor, nullMinor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	devRoot = t.TempDir()
	nodes := []struct {
		path string
		mode uint32
		dev  uint64
	}{
		{"null", unix.S_IFCHR | 0o666, st.Rdev},
		{"net/tun", unix.S_IFCHR | 0o600, st.Rdev},
		{"loop7", unix.S_IFBLK | 0o660, unix.Mkdev(7, 7)},
		{"console", unix.S_IFCHR | 0o600, unix.Mkdev(5, 1)},
		{"pts/0", unix.S_IFCHR | 0o600, unix.Mkdev(136, 0)},
	}
	for _, n := range nodes {
		p := filepath.Join(devRoot, n.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(p, n.mode, int(n.dev)); err != nil {
			t.Fatalf("mknod %s: %v", p, err)
		}
	}
	if err := os.Chown(filepath.Join(devRoot, "loop7"), 0, 6); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/fd/0", filepath.Join(devRoot, "stdin")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devRoot, "notadevice"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return devRoot, nullMajor, nullMinor
}

// newPodRoot makes a pod root with the files a sandbox would have written.
func newPodRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := WriteSandboxFiles(root, "pod", &DNS{}); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestSetupWorkloadBasics(t *testing.T) {
	ctx := context.Background()
	rootfs := makeRootfs(t, testPasswd, testGroup)
	podRoot := newPodRoot(t)
	devRoot, _, _ := testDevRoot(t)
	spec := newSpec(rootfs, map[string]string{AnnotationRLimitCore: "0;0"})
	spec.Process.User.Username = "33"
	spec.Root.Readonly = true
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/custom/hosts"})
	spec.Windows.Devices = []specs.WindowsDevice{{ID: "x", IDType: "class"}} // unknown type: ignored
	if err := SetupWorkload(ctx, "w1", "s1", podRoot, spec, Options{DevRoot: devRoot}); err != nil {
		t.Fatal(err)
	}
	if spec.Linux.CgroupsPath != "/pods/s1/w1" {
		t.Errorf("cgroupsPath %q", spec.Linux.CgroupsPath)
	}
	if spec.Windows != nil {
		t.Error("windows not cleared")
	}
	if spec.Process.User.UID != 33 || spec.Process.User.GID != 34 {
		t.Errorf("user %+v", spec.Process.User)
	}
	if len(spec.Process.Rlimits) != 1 || spec.Process.Rlimits[0].Type != "RLIMIT_CORE" {
		t.Errorf("rlimits %+v", spec.Process.Rlimits)
	}
	// hostname and resolv.conf bound from the pod root, read-only; the
	// spec's own /etc/hosts mount is kept and not duplicated.
	for _, f := range []string{"hostname", "resolv.conf"} {
		m := findMount(spec, "/etc/"+f)
		if m == nil || m.Source != filepath.Join(podRoot, f) || m.Type != "bind" || !slices.Equal(m.Options, []string{"bind", "ro"}) {
			t.Errorf("/etc/%s mount %+v", f, m)
		}
	}
	n := 0
	for _, m := range spec.Mounts {
		if m.Destination == "/etc/hosts" {
			n++
			if m.Source != "/custom/hosts" {
				t.Errorf("/etc/hosts mount replaced: %+v", m)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d /etc/hosts mounts", n)
	}
}

func TestSetupWorkloadErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		edit    func(*specs.Spec)
		wantErr error
		wantMsg string
	}{
		{
			name:    "hostname",
			edit:    func(s *specs.Spec) { s.Hostname = "mine" },
			wantErr: ErrWorkloadHostname,
			wantMsg: `workload container w1: spec hostname must be empty, got "mine"`,
		},
		{name: "gpu", edit: func(s *specs.Spec) { s.Windows.Devices = []specs.WindowsDevice{{ID: "g", IDType: "gpu"}} }, wantErr: ErrUnsupportedDevice},
		{name: "vpci", edit: func(s *specs.Spec) { s.Windows.Devices = []specs.WindowsDevice{{ID: "v", IDType: "vpci-instance-id"}} }, wantErr: ErrUnsupportedDevice},
		{name: "sandbox escape", edit: addMount("sandbox://../../etc", "/x"), wantErr: ErrInvalidMount},
		{name: "sandbox escape deep", edit: addMount("sandbox://a/../../../etc", "/x"), wantErr: ErrInvalidMount},
		{name: "sandbox-tmp escape", edit: addMount("sandbox-tmp://../etc", "/x"), wantErr: ErrInvalidMount},
		{name: "hugepages escape", edit: addMount("hugepages://2M/../../../etc", "/x"), wantErr: ErrInvalidMount},
		{name: "hugepages bad size", edit: addMount("hugepages://lots/x", "/x"), wantErr: ErrInvalidMount},
		{name: "uvm missing", edit: addMount("uvm:///does/not/exist", "/x"), wantErr: ErrInvalidMount},
		{name: "uvm relative", edit: addMount("uvm://etc", "/x"), wantErr: ErrInvalidMount},
		{name: "blockdev not a symlink", edit: addMount("/etc/hostname", "blockdev:///dev/b"), wantErr: ErrInvalidMount},
		{name: "shm zero", edit: annotate(AnnotationShmSizeKB, "0"), wantErr: ErrInvalidAnnotation},
		{name: "shm not a number", edit: annotate(AnnotationShmSizeKB, "64M"), wantErr: ErrInvalidAnnotation},
		{name: "device missing in UVM", edit: addDevices("/dev/fuse"), wantErr: os.ErrNotExist},
		{name: "device is a file", edit: addDevices("/dev/notadevice"), wantErr: ErrNotDevice},
		{name: "device is a symlink", edit: addDevices("/dev/stdin"), wantErr: ErrNotDevice},
		{name: "device outside /dev", edit: addDevices("/etc/passwd"), wantErr: ErrNotDevice},
		{name: "device escaping /dev", edit: addDevices("/dev/../etc/passwd"), wantErr: ErrNotDevice},
		{name: "username", edit: func(s *specs.Spec) { s.Process.User.Username = "ghost" }, wantErr: ErrUserNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			podRoot := newPodRoot(t)
			devRoot, _, _ := testDevRoot(t)
			spec := newSpec(makeRootfs(t, testPasswd, testGroup), nil)
			tc.edit(spec)
			err := SetupWorkload(ctx, "w1", "s1", podRoot, spec, Options{DevRoot: devRoot})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetupWorkload = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message %q, want %q", err, tc.wantMsg)
			}
			// Nothing may have been created outside the pod root.
			if _, err := os.Stat(filepath.Join(filepath.Dir(podRoot), "etc")); err == nil {
				t.Error("escape created a directory next to the pod root")
			}
		})
	}
}

func addMount(src, dest string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"rbind"}})
	}
}

func annotate(k, v string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func addDevices(paths ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		for _, p := range paths {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: p, Type: "c", Major: 1, Minor: 1})
		}
	}
}

func TestSetupWorkloadSandboxMounts(t *testing.T) {
	ctx := context.Background()
	podRoot := newPodRoot(t)
	outside := t.TempDir()
	// A container of the pod planted a symlink to the UVM's /etc inside the
	// shared sandboxMounts directory.
	if err := os.MkdirAll(filepath.Join(podRoot, SandboxMountsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(podRoot, SandboxMountsDir, "evil")); err != nil {
		t.Fatal(err)
	}
	uvmDir := t.TempDir()
	spec := newSpec(makeRootfs(t, "", ""), nil)
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: "sandbox://shared/data"},
		specs.Mount{Destination: "/scratch", Type: "bind", Source: "sandbox-tmp:///tmpdata"},
		specs.Mount{Destination: "/evil", Type: "bind", Source: "sandbox://evil/sub"},
		specs.Mount{Destination: "/uvm", Type: "bind", Source: "uvm://" + uvmDir},
		specs.Mount{Destination: "/plain", Type: "bind", Source: "/run/gcs/c/w1/mounts/m0"},
	)
	if err := SetupWorkload(ctx, "w1", "s1", podRoot, spec, Options{DevRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/data":    filepath.Join(podRoot, SandboxMountsDir, "shared/data"),
		"/scratch": filepath.Join(podRoot, SandboxTmpfsMountsDir, "tmpdata"),
		"/evil":    filepath.Join(podRoot, SandboxMountsDir, outside, "sub"),
		"/uvm":     uvmDir,
		"/plain":   "/run/gcs/c/w1/mounts/m0",
	}
	for dest, src := range want {
		m := findMount(spec, dest)
		if m == nil || m.Source != src {
			t.Errorf("%s mount %+v, want source %s", dest, m, src)
		}
	}
	for _, d := range []string{"/data", "/scratch", "/evil"} {
		fi, err := os.Stat(want[d])
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
			t.Errorf("%s: %v %v, want a 0777 directory", want[d], fi, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(podRoot, SandboxMountsDir, "shared")); fi.Mode().Perm() != 0o777 {
		t.Errorf("parent mode %v, want 0777", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("symlinked sandbox mount created %v outside the pod root", ents)
	}
}

func TestSetupWorkloadShm(t *testing.T) {
	ctx := context.Background()
	spec := newSpec(makeRootfs(t, "", ""), map[string]string{AnnotationShmSizeKB: "131072"})
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/other"})
	if err := SetupWorkload(ctx, "w1", "s1", newPodRoot(t), spec, Options{DevRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	var shm []specs.Mount
	for _, m := range spec.Mounts {
		if m.Destination == "/dev/shm" {
			shm = append(shm, m)
		}
	}
	want := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=131072k"}}
	if len(shm) != 1 || shm[0].Type != want.Type || shm[0].Source != want.Source || !slices.Equal(shm[0].Options, want.Options) {
		t.Fatalf("/dev/shm mounts %+v, want only %+v", shm, want)
	}
	// Without the annotation the spec's /dev/shm is untouched.
	spec = newSpec(makeRootfs(t, "", ""), nil)
	if err := SetupWorkload(ctx, "w1", "s1", newPodRoot(t), spec, Options{DevRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if m := findMount(spec, "/dev/shm"); m == nil || !slices.Equal(m.Options, []string{"size=65536k"}) {
		t.Fatalf("/dev/shm changed without annotation: %+v", m)
	}
}

func TestSetupWorkloadDevices(t *testing.T) {
	ctx := context.Background()
	devRoot, nullMajor, nullMinor := testDevRoot(t)
	mode := os.FileMode(0o640)
	spec := newSpec(makeRootfs(t, "", ""), nil)
	spec.Linux.Devices = []specs.LinuxDevice{
		// Host-side numbers are stale; the UVM's node decides.
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: &mode},
		{Path: "/dev/loop7", Type: "c", Major: 1, Minor: 1},
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200},
	}
	if err := SetupWorkload(ctx, "w1", "s1", newPodRoot(t), spec, Options{DevRoot: devRoot}); err != nil {
		t.Fatal(err)
	}
	if len(spec.Linux.Devices) != 2 {
		t.Fatalf("devices %+v", spec.Linux.Devices)
	}
	tun, loop := spec.Linux.Devices[0], spec.Linux.Devices[1]
	if tun.Path != "/dev/net/tun" || tun.Type != "c" || tun.Major != nullMajor || tun.Minor != nullMinor || *tun.UID != 0 || *tun.GID != 0 {
		t.Errorf("tun %+v", tun)
	}
	if loop.Path != "/dev/loop7" || loop.Type != "b" || loop.Major != 7 || loop.Minor != 7 || *loop.GID != 6 {
		t.Errorf("loop %+v", loop)
	}
	rules := spec.Linux.Resources.Devices
	if len(rules) != 2 {
		t.Fatalf("rules %+v", rules)
	}
	for i, d := range []specs.LinuxDevice{tun, loop} {
		r := rules[i]
		if !r.Allow || r.Type != d.Type || *r.Major != d.Major || *r.Minor != d.Minor || r.Access != "rwm" {
			t.Errorf("rule %d = %+v for %+v", i, r, d)
		}
	}
}

func TestSetupWorkloadPrivileged(t *testing.T) {
	ctx := context.Background()
	devRoot, _, _ := testDevRoot(t)
	spec := newSpec(makeRootfs(t, "", ""), map[string]string{AnnotationPrivileged: "true"})
	spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 99, Minor: 99}}
	spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if err := SetupWorkload(ctx, "w1", "s1", newPodRoot(t), spec, Options{DevRoot: devRoot}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, d := range spec.Linux.Devices {
		paths = append(paths, d.Path)
		if d.Path == "/dev/null" && d.Major == 99 {
			t.Errorf("/dev/null not replaced by the UVM node: %+v", d)
		}
	}
	slices.Sort(paths)
	if want := []string{"/dev/loop7", "/dev/net/tun", "/dev/null"}; !slices.Equal(paths, want) {
		t.Errorf("devices %v, want %v (console, pts, symlinks and files skipped)", paths, want)
	}
	if r := spec.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" || r[0].Type != "" || r[0].Major != nil {
		t.Errorf("cgroup rules %+v, want one allow-all rwm", r)
	}
}

func TestSetupWorkloadBlockDev(t *testing.T) {
	ctx := context.Background()
	devRoot, _, _ := testDevRoot(t)
	links := t.TempDir()
	link := filepath.Join(links, "m3")
	if err := os.Symlink(filepath.Join(devRoot, "loop7"), link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opts   []string
		access string
	}{
		{nil, "rwm"},
		{[]string{"bind", "ro"}, "r"},
	}
	for _, tc := range tests {
		spec := newSpec(makeRootfs(t, "", ""), nil)
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "blockdev:///dev/xvdb", Type: "bind", Source: link, Options: tc.opts})
		if err := SetupWorkload(ctx, "w1", "s1", newPodRoot(t), spec, Options{DevRoot: devRoot}); err != nil {
			t.Fatal(err)
		}
		m := findMount(spec, "/dev/xvdb")
		if m == nil || m.Source != link {
			t.Fatalf("mount %+v", spec.Mounts)
		}
		r := spec.Linux.Resources.Devices
		if len(r) != 1 || r[0].Type != "b" || *r[0].Major != 7 || *r[0].Minor != 7 || r[0].Access != tc.access || !r[0].Allow {
			t.Errorf("options %v: rules %+v, want b 7:7 %s", tc.opts, r, tc.access)
		}
	}
}

func TestSetupStandalone(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		hostname string
		dns      *DNS
		preMount string
		readonly bool
		resolv   string
		wantErr  error
	}{
		{name: "with DNS", hostname: "solo", dns: &DNS{Servers: []string{"1.1.1.1"}}, resolv: "nameserver 1.1.1.1\n"},
		{name: "no namespace record", resolv: ""},
		{name: "spec mounts hosts", preMount: "/etc/hosts", readonly: true},
		{name: "invalid hostname", hostname: "x\ny", wantErr: ErrInvalidHostname},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bundle := filepath.Join(t.TempDir(), "c1")
			spec := newSpec(filepath.Join(bundle, "rootfs"), nil)
			spec.Hostname = tc.hostname
			spec.Root.Readonly = tc.readonly
			spec.Process.User.Username = "someone" // not resolved for standalone
			if tc.preMount != "" {
				spec.Mounts = append(spec.Mounts, specs.Mount{Destination: tc.preMount, Type: "bind", Source: "/elsewhere"})
			}
			err := SetupStandalone(ctx, "c1", bundle, spec, Options{UVMHostname: "uvm", DNS: tc.dns})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SetupStandalone = %v, want %v", err, tc.wantErr)
				}
				if _, err := os.Stat(bundle); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("bundle created despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			name := tc.hostname
			if name == "" {
				name = "uvm"
			}
			want := map[string]string{"hostname": name + "\n", "hosts": string(HostsContent(name)), "resolv.conf": tc.resolv}
			for f, content := range want {
				dest := "/etc/" + f
				p := filepath.Join(bundle, f)
				if dest == tc.preMount {
					if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s written although the spec mounts %s", f, dest)
					}
					if m := findMount(spec, dest); m.Source != "/elsewhere" {
						t.Errorf("spec's %s mount replaced: %+v", dest, m)
					}
					continue
				}
				if got := readFile(t, p); got != content {
					t.Errorf("%s = %q, want %q", f, got, content)
				}
				wantOpts := []string{"bind"}
				if tc.readonly {
					wantOpts = append(wantOpts, "ro")
				}
				if m := findMount(spec, dest); m == nil || m.Source != p || m.Type != "bind" || !slices.Equal(m.Options, wantOpts) {
					t.Errorf("%s mount %+v", dest, m)
				}
			}
			if spec.Linux.CgroupsPath != "/pods/c1" || spec.Windows != nil {
				t.Errorf("cgroupsPath %q windows %v", spec.Linux.CgroupsPath, spec.Windows)
			}
			if spec.Process.User.UID != 0 || spec.Process.User.Username != "someone" {
				t.Errorf("standalone user changed: %+v", spec.Process.User)
			}
		})
	}
}

func TestSetupDispatch(t *testing.T) {
	ctx := context.Background()
	spec := newSpec(makeRootfs(t, "", ""), nil)
	if err := Setup(ctx, KindUnknown, "x", "x", t.TempDir(), spec, Options{}); err == nil {
		t.Error("Setup of KindUnknown succeeded")
	}
	root := t.TempDir()
	if err := Setup(ctx, KindStandalone, "x", "x", root, spec, Options{UVMHostname: "h"}); err != nil || spec.Linux.CgroupsPath != "/pods/x" {
		t.Errorf("Setup standalone: %v %q", err, spec.Linux.CgroupsPath)
	}
	if err := Setup(ctx, KindSandbox, "s", "s", root, newSpec("/", nil), Options{UVMHostname: "h"}); !errors.Is(err, ErrNoNetworkNamespace) {
		t.Errorf("Setup sandbox without DNS: %v", err)
	}
	if err := SetupSandbox(ctx, "s", "s", root, nil, Options{}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("nil spec: %v", err)
	}
	rel := newSpec("rootfs", nil)
	rel.Process.User.Username = "root"
	if err := SetupSandbox(ctx, "s", "s", root, rel, Options{UVMHostname: "h", DNS: &DNS{}}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("relative root without bundle: %v", err)
	}
}

func TestTeeLog(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, LogsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, LogsDir, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    string
		wantErr bool
	}{
		{path: "", want: ""},
		{path: "c1.log", want: filepath.Join(root, "logs/c1.log")},
		{path: "dir/sub/c1.log", want: filepath.Join(root, "logs/dir/sub/c1.log")},
		{path: "/abs.log", want: filepath.Join(root, "logs/abs.log")},
		{path: "link/x.log", want: filepath.Join(root, "logs", outside, "x.log")},
		{path: "../c1.log", wantErr: true},
		{path: "a/../../c1.log", wantErr: true},
		{path: ".", wantErr: true},
	}
	for _, tc := range tests {
		spec := &specs.Spec{Annotations: map[string]string{AnnotationTeeLogPath: tc.path}}
		got, err := TeeLogPath(spec, root)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidAnnotation) {
				t.Errorf("TeeLogPath(%q) = %q, %v; want ErrInvalidAnnotation", tc.path, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("TeeLogPath(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
			continue
		}
		if got != "" {
			fi, err := os.Stat(filepath.Dir(got))
			if err != nil || !fi.IsDir() {
				t.Errorf("parent of %q not created: %v", got, err)
			}
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("tee log created %v outside the logs dir", ents)
	}
	if fi, _ := os.Stat(filepath.Join(root, "logs/dir/sub")); fi.Mode().Perm() != 0o777 {
		t.Errorf("log parent mode %v, want 0777", fi.Mode().Perm())
	}

	spec := &specs.Spec{Annotations: map[string]string{AnnotationTeeLogDirMount: "/var/log/app"}}
	if err := AddTeeLogDirMount(spec, root); err != nil {
		t.Fatal(err)
	}
	if m := findMount(spec, "/var/log/app"); m == nil || m.Source != filepath.Join(root, "logs") || !slices.Equal(m.Options, []string{"bind"}) {
		t.Errorf("tee log dir mount %+v", spec.Mounts)
	}
	spec = &specs.Spec{}
	if err := AddTeeLogDirMount(spec, root); err != nil || len(spec.Mounts) != 0 {
		t.Errorf("mount added without annotation: %v %+v", err, spec.Mounts)
	}
}

func TestHostNetwork(t *testing.T) {
	tests := []struct {
		ann  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{AnnotationHostNetwork: "true"}, true},
		{map[string]string{AnnotationHostNetwork: "1"}, true},
		{map[string]string{AnnotationHostNetwork: "TRUE"}, true},
		{map[string]string{AnnotationHostNetwork: "yes"}, false},
		{map[string]string{AnnotationHostNetwork: "false"}, false},
	}
	for _, tc := range tests {
		got := HostNetworkRequested(tc.ann)
		if got != tc.want {
			t.Errorf("HostNetworkRequested(%v) = %v", tc.ann, got)
		}
		spec := newSpec("/", tc.ann)
		ApplyHostNetwork(spec, got)
		var types []string
		for _, ns := range spec.Linux.Namespaces {
			types = append(types, string(ns.Type))
		}
		want := "pid,network,mount"
		if tc.want {
			want = "pid,mount"
		}
		if strings.Join(types, ",") != want {
			t.Errorf("%v: namespaces %v, want %s", tc.ann, types, want)
		}
	}
}
