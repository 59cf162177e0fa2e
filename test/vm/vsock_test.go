package vm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

var (
	backendOnce sync.Once
	backendPath string
	backendErr  error
)

// requireBackend builds bin/vhost-vsock next to the image.
func requireBackend(t testing.TB) string {
	t.Helper()
	img := requireImage(t)
	backendOnce.Do(func() {
		backendPath = filepath.Join(filepath.Dir(img.Initrd), "vhost-vsock")
		cmd := exec.Command("go", "build", "-trimpath", "-o", backendPath, "./cmd/vhost-vsock")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			backendErr = err
			t.Logf("%s", out)
		}
	})
	if backendErr != nil {
		t.Fatalf("build vhost-vsock: %v", backendErr)
	}
	return backendPath
}

// bootVsock starts a VM on the production vsock path and returns it with
// a negotiated bridge client. On failure the console, QEMU's and the
// back-end's output and the port-109 log are printed.
func bootVsock(t *testing.T, cfg VsockConfig) (*VsockVM, *hostclient.Client, time.Duration) {
	t.Helper()
	cfg.Backend = requireBackend(t)
	cfg.Image = image
	// unix socket paths are short: t.TempDir() can be too long.
	dir, err := os.MkdirTemp("", "vsvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg.Dir = dir
	v, err := StartVsock(cfg)
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
	conn, err := v.AcceptBridge(ctx)
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

// powerOffVsock powers the UVM off through the bridge, checks that QEMU
// and then the back-end exit cleanly, that init took the vsock path, and
// that every log line was JSON.
func powerOffVsock(t *testing.T, v *VsockVM, c *hostclient.Client) {
	t.Helper()
	go func() { _ = c.Shutdown(context.Background(), prot.NullContainerID, false) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := v.Wait(ctx); err != nil && ctx.Err() != nil {
		t.Fatalf("qemu still running after ShutdownGraceful: %v", err)
	}
	if err := v.BackendExit(ctx); err != nil {
		t.Errorf("vhost-vsock after QEMU exited: %v", err)
	}
	con, err := os.ReadFile(v.Console)
	if err != nil {
		t.Fatal(err)
	}
	console := string(con)
	if strings.Contains(console, "virtio-serial") || strings.Contains(console, "Kernel panic") {
		t.Errorf("console shows the test switch or a panic")
	}
	if bad := v.NonJSONLogLines(); len(bad) > 0 {
		t.Errorf("%d port-109 log lines are not JSON, first: %q", len(bad), bad[0])
	}
}

func TestVsockBoot(t *testing.T) {
	t.Parallel()
	v, c, ready := bootVsock(t, VsockConfig{GCSArgs: []string{"-disable-time-sync"}})
	t.Logf("bridge ready over vsock %.2fs after qemu start", ready.Seconds())
	powerOffVsock(t, v, c)
	t.Log(v.Logs())
}
