package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// The image is built once per test binary.
var (
	imageOnce sync.Once
	image     *Image
	imageErr  error
	repoRoot  string
)

// requireImage builds the image, or fails (in CI, CI=true) or skips (on
// a developer machine without QEMU or the generic kernel).
func requireImage(t testing.TB) *Image {
	t.Helper()
	imageOnce.Do(func() {
		if imageErr = CheckQEMU(); imageErr != nil {
			return
		}
		if _, imageErr = FindKernel(); imageErr != nil {
			return
		}
		wd, err := os.Getwd()
		if err != nil {
			imageErr = err
			return
		}
		if repoRoot, imageErr = RepoRoot(wd); imageErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "opengcs-vm-image-")
		if err != nil {
			imageErr = err
			return
		}
		runc, err := StaticRunc(repoRoot, dir)
		if err != nil {
			imageErr = err
			return
		}
		image, imageErr = BuildImage(repoRoot, dir, runc)
	})
	if imageErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("VM image: %v", imageErr)
		}
		t.Skipf("VM image unavailable on this machine: %v", imageErr)
	}
	return image
}

func TestMain(m *testing.M) {
	code := m.Run()
	if image != nil {
		os.RemoveAll(filepath.Dir(image.Initrd))
	}
	os.Exit(code)
}

// bootTimeout bounds one boot under TCG (about 2 s unloaded; two VMs
// on two busy cores take longer).
const bootTimeout = 90 * time.Second

// boot starts a VM (cfg.Image and cfg.Dir are filled in) and returns it
// with a negotiated bridge client. The VM is killed at cleanup; if the
// test failed, the console (init's markers, the kernel log and the gcs's
// JSON log) and QEMU's output are printed.
func boot(t *testing.T, cfg Config) (*VM, *hostclient.Client, time.Duration) {
	t.Helper()
	cfg.Image = requireImage(t)
	cfg.Backend = requireBackend(t)
	cfg.Dir = t.TempDir()
	v, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.Kill()
		if t.Failed() {
			t.Log(v.Logs())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	conn, err := v.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := hostclient.New(conn)
	t.Cleanup(func() { c.Close() })
	resp, err := c.Negotiate(ctx)
	if err != nil {
		t.Fatalf("negotiate: %v", err)
	}
	ready := time.Since(v.Started)
	if resp.Version != prot.ProtocolVersion || resp.Capabilities.RuntimeOsType != "Linux" {
		t.Fatalf("negotiated %+v", resp)
	}
	return v, c, ready
}

// powerOff sends ShutdownGraceful for the utility VM (the null container
// id): the gcs powers the guest off, and with -no-reboot QEMU exits. The
// gcs may not answer at all. It then checks init's console markers and
// returns the console text.
func powerOff(t *testing.T, v *VM, c *hostclient.Client) string {
	t.Helper()
	go func() { _ = c.Shutdown(context.Background(), prot.NullContainerID, false) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := v.Wait(ctx); err != nil && ctx.Err() != nil {
		t.Fatalf("qemu still running after ShutdownGraceful: %v", err)
	}
	con, err := os.ReadFile(v.Console)
	if err != nil {
		t.Fatal(err)
	}
	console := string(con)
	for _, want := range []string{
		"opengcs-init: cgroup v2=true controllers=",
		"opengcs-init: modules loaded=",
		"opengcs-init: started /bin/vsockexec -e 109 /bin/gcs -v4 -log-format json",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	for _, line := range strings.Split(console, "\n") {
		if strings.HasPrefix(line, "opengcs-init: modules loaded=") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if !strings.Contains(console, " failed=0") {
		t.Errorf("some kernel modules failed to load")
	}
	if strings.Contains(console, "Kernel panic") {
		t.Errorf("the guest panicked instead of powering off")
	}
	for _, line := range ConsoleNonJSON(console) {
		t.Errorf("console line is neither init's, the kernel's nor a JSON log entry: %q", line)
	}
	if err := v.BackendExit(ctx); err != nil {
		t.Errorf("vhost-vsock after QEMU exited: %v", err)
	}
	for _, line := range v.NonJSONLogLines() {
		t.Errorf("port-109 log line is not a JSON entry: %q", line)
	}
	return console
}

// BenchmarkBootToBridge measures the wall time from QEMU's start to a
// negotiated bridge (boot to bridge-ready) and, once the gcs is ready,
// the guest's memory in use (MemTotal − MemAvailable, read by an external
// process); it reports the medians and the image size.
func BenchmarkBootToBridge(b *testing.B) {
	img := requireImage(b)
	b.ReportMetric(float64(img.Size)/(1<<20), "initrd-MiB")
	var times []time.Duration
	var used []int64
	for i := 0; i < b.N; i++ {
		d, u, err := bootOnce(img, requireBackend(b), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, d)
		used = append(used, u)
		b.Logf("boot %d: %.3fs, guest memory in use %.1f MiB", i, d.Seconds(), float64(u)/(1<<20))
	}
	slices.Sort(times)
	slices.Sort(used)
	b.ReportMetric(times[len(times)/2].Seconds(), "median-s/boot")
	b.ReportMetric(float64(used[len(used)/2])/(1<<20), "median-guest-used-MiB")
}

// bootOnce boots a VM with the host's command line, measures the time to
// a negotiated bridge, reads /proc/meminfo through the test port and
// powers the VM off.
func bootOnce(img *Image, backend, dir string) (time.Duration, int64, error) {
	v, err := Start(Config{Image: img, Dir: dir, Backend: backend, GCSArgs: GCSTestArgs, TestOut: true})
	if err != nil {
		return 0, 0, err
	}
	defer v.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	conn, err := v.Accept(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%w\n%s", err, v.Logs())
	}
	c := hostclient.New(conn)
	defer c.Close()
	if _, err := c.Negotiate(ctx); err != nil {
		return 0, 0, fmt.Errorf("negotiate: %w\n%s", err, v.Logs())
	}
	ready := time.Since(v.Started)
	if code, err := RunSection(ctx, c, nil, "meminfo", MemInfoScript); err != nil || code != 0 {
		return 0, 0, fmt.Errorf("meminfo: exit %d, %v", code, err)
	}
	go func() { _ = c.Shutdown(context.Background(), prot.NullContainerID, false) }()
	if err := v.Wait(ctx); err != nil && ctx.Err() != nil {
		return 0, 0, fmt.Errorf("qemu still running after ShutdownGraceful: %w", err)
	}
	raw, err := os.ReadFile(v.TestOut)
	if err != nil {
		return 0, 0, err
	}
	used, err := MemoryInUse(Sections(string(raw))["meminfo"])
	return ready, used, err
}
