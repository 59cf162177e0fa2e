package initproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/service/gcs/transport"
)

// TestMain runs helper modes in a child process: the steps that mount or
// reap act on the whole process, so they run in a re-executed test binary
// (in its own mount namespace, or as a subreaper).
func TestMain(m *testing.M) {
	switch os.Getenv("INITPROC_HELPER") {
	case "fs":
		os.Exit(helperFS(os.Getenv("INITPROC_ROOT")))
	case "reap":
		os.Exit(helperReap(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    Options
		wantErr bool
	}{
		{nil, Options{DebugShell: "/bin/sh", Argv: []string{"/bin/gcs", "-loglevel", "debug", "-logfile=/run/gcs/gcs.log"}}, false},
		{[]string{"-e", "1", "/bin/vsockexec", "-e", "109", "/bin/gcs"}, Options{EntropyPort: 1, Argv: []string{"/bin/vsockexec", "-e", "109", "/bin/gcs"}}, false},
		{[]string{"-w", "-d", "/bin/sh", "x"}, Options{WritableOverlay: true, DebugShell: "/bin/sh", Argv: []string{"x"}}, false},
		{[]string{"-e", "0", "x"}, Options{}, true},
		{[]string{"-e", "abc", "x"}, Options{}, true},
		{[]string{"-z", "x"}, Options{}, true},
		{[]string{"-e", "1"}, Options{}, true},
	}
	for _, tc := range tests {
		got, err := ParseArgs(tc.args)
		if tc.wantErr {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("ParseArgs(%q): err %v, want ErrUsage", tc.args, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseArgs(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

func TestCmdline(t *testing.T) {
	c := ParseCmdline(`console=ttyS0 quiet dm-mod.create="a b,c" opengcs.bridge=virtio-serial hcsshim.cgroup=v1 -- -e 1 opengcs.bridge=x` + "\n")
	if v, ok := c.Value("opengcs.bridge"); !ok || v != "virtio-serial" {
		t.Errorf("bridge = %q %v (tokens after -- must not count)", v, ok)
	}
	if v, _ := c.Value("dm-mod.create"); v != "a b,c" {
		t.Errorf("quoted value = %q", v)
	}
	if !c.Has("quiet") || !c.Has("hcsshim.cgroup=v1") || c.Has("-e") {
		t.Errorf("Has mismatch in %q", c)
	}
	if _, ok := c.Value("missing"); ok {
		t.Error("missing key reported present")
	}
}

func TestSerialArgv(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/bin/vsockexec -e 109 /bin/gcs -v4 -loglevel debug", "/bin/gcs -use-inouterr -v4 -loglevel debug"},
		{"/bin/vsockexec -r -o 109 -e 109 /bin/gcs", "/bin/gcs -use-inouterr"},
		{"/bin/gcs -use-inouterr -v4", "/bin/gcs -use-inouterr -v4"},
		{"/bin/gcs", "/bin/gcs -use-inouterr"},
	}
	for _, tc := range tests {
		got, err := SerialArgv(strings.Fields(tc.in))
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("SerialArgv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := SerialArgv([]string{"/bin/vsockexec", "-e", "109"}); err == nil {
		t.Error("vsockexec without a program accepted")
	}
}

// TestFindVirtioPort uses a fake sysfs (the hardware boundary) and a real
// device-node stand-in.
func TestFindVirtioPort(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	mk := func(port, name string) {
		d := filepath.Join(sys, "class/virtio-ports", port)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("vport0p1", "other")
	mk("vport0p2", "opengcs.bridge")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// The node does not exist yet: the lookup must wait, then time out.
	if _, err := FindVirtioPort(ctx, sys, dev, "opengcs.bridge", 10*time.Millisecond); !errors.Is(err, ErrPortNotFound) {
		t.Fatalf("without a device node: %v, want ErrPortNotFound", err)
	}
	if err := os.WriteFile(filepath.Join(dev, "vport0p2"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := FindVirtioPort(context.Background(), sys, dev, "opengcs.bridge", 10*time.Millisecond)
	if err != nil || got != filepath.Join(dev, "vport0p2") {
		t.Fatalf("FindVirtioPort = %q, %v", got, err)
	}
}

// TestLoadModules checks the load order and error handling against a
// module tree; the kernel (finit_module) is the boundary replaced here,
// since loading modules into the development machine's kernel is not an
// option.
func TestLoadModules(t *testing.T) {
	dir := t.TempDir()
	dep := "kernel/a/virtio_console.ko: kernel/a/virtio_ring.ko kernel/a/virtio.ko\n" +
		"kernel/a/virtio.ko:\nkernel/a/virtio_ring.ko:\nkernel/n/bridge.ko: kernel/n/stp.ko\nkernel/n/stp.ko:\nkernel/x/broken.ko.xz:\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a/virtio_console.ko", "a/virtio.ko", "a/virtio_ring.ko", "n/bridge.ko", "n/stp.ko", "x/broken.ko.xz"} {
		p := filepath.Join(dir, "kernel", f)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	var compressed []string
	c := &Config{Log: Kmsg{Path: filepath.Join(dir, "nokmsg/kmsg")}, Insert: func(f *os.File, comp bool) error {
		b, _ := io.ReadAll(f)
		order = append(order, filepath.Base(string(b)))
		if comp {
			compressed = append(compressed, string(b))
		}
		switch string(b) {
		case "a/virtio.ko":
			return unix.EEXIST
		case "x/broken.ko.xz":
			return unix.ENOEXEC
		}
		return nil
	}}
	rep, err := c.LoadModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "stp.ko bridge.ko virtio.ko virtio_ring.ko virtio_console.ko broken.ko.xz"
	if strings.Join(order, " ") != want {
		t.Errorf("order %q, want %q (bridge first, dependencies before users)", strings.Join(order, " "), want)
	}
	if rep.Loaded != 4 || rep.AlreadyLoaded != 1 || len(rep.Failed) != 1 || rep.Failed[0] != "broken" {
		t.Errorf("report %+v", rep)
	}
	if len(compressed) != 1 || compressed[0] != "x/broken.ko.xz" {
		t.Errorf("compressed flag given for %q", compressed)
	}
	// No modules.dep: nothing to do.
	rep, err = c.LoadModules(t.TempDir())
	if err != nil || rep.Loaded != 0 {
		t.Errorf("empty dir: %+v %v", rep, err)
	}
}

func TestEntropyOverTransport(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "h")
	tr := transport.NewUnix(prefix)
	l, err := tr.Listen(1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	payload := bytes.Repeat([]byte{0xA5, 0x5A, 0x01}, 3000) // 9000 bytes
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write(payload)
		c.Close()
	}()
	var got []byte
	var chunks []int
	n, err := Entropy(context.Background(), tr, 1, func(b []byte) error {
		chunks = append(chunks, len(b))
		got = append(got, b...)
		return nil
	})
	if err != nil || n != len(payload) || !bytes.Equal(got, payload) {
		t.Fatalf("Entropy = %d, %v; got %d bytes", n, err, len(got))
	}
	for _, c := range chunks {
		if c > EntropyChunk || c == 0 {
			t.Errorf("chunk of %d bytes", c)
		}
	}
	if _, err := Entropy(context.Background(), tr, 2, func([]byte) error { return nil }); err == nil {
		t.Error("entropy from a port nobody listens on succeeded")
	}
}

// TestLoopbackUp brings lo up in a fresh network namespace owned by a
// locked thread that is thrown away afterwards.
func TestLoopbackUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		up := func() (bool, error) {
			ifc, err := net.InterfaceByName("lo")
			if err != nil {
				return false, err
			}
			return ifc.Flags&net.FlagUp != 0, nil
		}
		if isUp, err := up(); err != nil || isUp {
			errc <- fmt.Errorf("fresh namespace: lo up=%v err=%v, want down", isUp, err)
			return
		}
		if err := LoopbackUp(); err != nil {
			errc <- err
			return
		}
		if isUp, err := up(); err != nil || !isUp {
			errc <- fmt.Errorf("after LoopbackUp: lo up=%v err=%v", isUp, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func helperCmd(t *testing.T, mode string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(append(os.Environ(), "INITPROC_HELPER="+mode), env...)
	return cmd
}

// helperReap is a subreaper running ReapUntil on a shell script that
// leaves an orphan behind and only exits once that orphan was reaped.
func helperReap(script string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Println("prctl:", err)
		return 90
	}
	pid, err := Launch("/", []string{"/bin/sh", "-c", script}, [3]uintptr{0, 1, 2})
	if err != nil {
		fmt.Println("launch:", err)
		return 91
	}
	others := 0
	code, err := ReapUntil(pid, func(Reaped) { others++ })
	if err != nil {
		fmt.Println("reap:", err)
		return 92
	}
	fmt.Printf("primary=%d others=%d\n", code, others)
	return 0
}

func TestReapOrphansAndPrimaryStatus(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "orphan.pid")
	// The subshell starts a child and exits at once, orphaning it; the
	// primary waits until the orphan is gone from /proc (which only
	// happens once someone reaps it), checks its environment, then exits.
	script := fmt.Sprintf(`(sh -c 'echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s' &)
while [ ! -s %[1]s ]; do sleep 0.01; done
p=$(cat %[1]s)
while [ -e /proc/$p ]; do sleep 0.01; done
[ "$PATH" = "/sbin:/usr/sbin:/bin:/usr/bin" ] && [ -z "$INITPROC_HELPER" ] || exit 99
[ "$(cut -d' ' -f6 /proc/$$/stat)" = "$$" ] || exit 98
kill -USR1 $$`, pidfile)
	cmd := helperCmd(t, "reap", nil, script)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("reaper helper hung (orphan never reaped?): %s", out)
	}
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	want := fmt.Sprintf("primary=%d others=1", 128+int(syscall.SIGUSR1))
	if !strings.Contains(string(out), want) {
		t.Errorf("helper said %q, want %q", out, want)
	}
}

// helperFS runs SetupFS (with the writable overlays) against root inside
// a private mount namespace and prints what got mounted under root.
func helperFS(root string) int {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("make-rprivate:", err)
		return 90
	}
	c := &Config{Root: root}
	if err := c.SetupFS(true); err != nil {
		fmt.Println("SetupFS:", err)
		return 91
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		fmt.Println(err)
		return 92
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || !strings.HasPrefix(f[4], root) {
			continue
		}
		sep := 6
		for f[sep] != "-" {
			sep++
		}
		fmt.Printf("MOUNT %s %s %s\n", strings.TrimPrefix(f[4], root), f[sep+1], f[5])
	}
	for _, l := range []string{"/dev/fd", "/dev/stdin"} {
		target, _ := os.Readlink(filepath.Join(root, l))
		fmt.Printf("LINK %s %s\n", l, target)
	}
	return 0
}

func TestSetupFSInPrivateNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mounts")
	}
	root := t.TempDir()
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "etc", "var"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := helperCmd(t, "fs", []string{"INITPROC_ROOT=" + root})
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"MOUNT /dev devtmpfs", "MOUNT /proc proc rw,nosuid,nodev,noexec", "MOUNT /run tmpfs rw,nosuid,nodev,noexec",
		"MOUNT /tmp tmpfs", "MOUNT /dev/shm tmpfs", "MOUNT /dev/pts devpts rw,nosuid,noexec",
		"MOUNT /sys sysfs", "MOUNT /run/over tmpfs", "MOUNT /etc overlay rw,nosuid,nodev,noexec",
		"MOUNT /var overlay rw,nosuid,nodev", "LINK /dev/fd /proc/self/fd", "LINK /dev/stdin /proc/self/fd/0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	// The namespace died with the helper: nothing is left mounted here.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), root) {
		t.Errorf("mounts under %s leaked into the test's namespace", root)
	}
}
