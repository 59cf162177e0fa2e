package initproc

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/service/gcs/transport"
)

// Config holds what init needs from its surroundings.
type Config struct {
	// Root is where the steps act ("/" in the VM).
	Root string
	// Log receives diagnostics (the kernel log in the VM).
	Log Kmsg
	// Console receives progress markers ("opengcs-init: ...").
	Console io.Writer
	// Transport reaches the host's entropy port.
	Transport transport.Transport
	// Insert loads a kernel module; nil means finit_module.
	Insert InsertFunc
}

func (c *Config) marker(format string, args ...any) {
	if c.Console != nil {
		fmt.Fprintf(c.Console, "opengcs-init: "+format+"\n", args...)
	}
}

// Run is PID 1: it prepares the VM as docs/boot.md, "init (PID 1)", describes
// and returns the exit code of the primary child, which the caller passes to
// exit(2).
func (c *Config) Run(ctx context.Context, args []string) int {
	opts, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// PID 1 must not die of a signal: catch them all (caught signals are
	// reset to the default disposition in the children at exec).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	go func() {
		for range sigs {
		}
	}()
	fail := func(err error) int {
		c.Log.Errorf("%v", err)
		fmt.Fprintf(os.Stderr, "opengcs-init: fatal: %v\n", err)
		return 1
	}
	// Soft 1024 for compatibility, a large hard limit (syscall.Setrlimit
	// also becomes what Go passes to children).
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 1024, Max: 1024 * 1024}); err != nil {
		return fail(fmt.Errorf("setrlimit NOFILE: %w", err))
	}
	if err := c.SetupFS(opts.WritableOverlay); err != nil {
		return fail(err)
	}
	raw, err := os.ReadFile(c.path("/proc/cmdline"))
	if err != nil {
		return fail(fmt.Errorf("read /proc/cmdline: %w", err))
	}
	cmdline := ParseCmdline(string(raw))
	cg, err := c.SetupCgroups(cmdline)
	if err != nil {
		return fail(err)
	}
	c.marker("cgroup v2=%t controllers=%s", cg.V2, strings.Join(cg.Controllers, ","))
	if err := LoopbackUp(); err != nil {
		return fail(err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return fail(fmt.Errorf("uname: %w", err))
	}
	release := unix.ByteSliceToString(uts.Release[:])
	rep, err := c.LoadModules(c.path(filepath.Join("/lib/modules", release)))
	if err != nil {
		c.Log.Warnf("modules: %v", err)
	}
	c.marker("modules loaded=%d already=%d failed=%d", rep.Loaded, rep.AlreadyLoaded, len(rep.Failed))

	serial := false
	if v, ok := cmdline.Value(BridgeParam); ok {
		if v != BridgeVirtioSerial {
			return fail(fmt.Errorf("%s=%q: only %q is known", BridgeParam, v, BridgeVirtioSerial))
		}
		serial = true
	}
	stdio := [3]uintptr{0, 1, 2}
	argv := opts.Argv
	if serial {
		if argv, err = SerialArgv(argv); err != nil {
			return fail(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		dev, err := FindVirtioPort(wctx, c.path("/sys"), c.path("/dev"), BridgePortName, 20*time.Millisecond)
		cancel()
		if err != nil {
			return fail(err)
		}
		port, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return fail(fmt.Errorf("open bridge port: %w", err))
		}
		defer port.Close()
		stdio = [3]uintptr{port.Fd(), port.Fd(), 2}
		c.marker("bridge on virtio-serial port %s", dev)
	} else if opts.EntropyPort != 0 {
		add, closeRand, err := RandomDevice(c.path("/dev/random"))
		if err != nil {
			c.Log.Warnf("entropy: %v", err)
		} else {
			n, err := Entropy(ctx, c.Transport, opts.EntropyPort, add)
			closeRand()
			if err != nil {
				c.Log.Warnf("entropy: %v", err)
			} else {
				c.Log.Infof("added %d bytes of entropy from port %d", n, opts.EntropyPort)
			}
		}
	}
	c.startServices()
	if len(opts.Argv) > 0 && opts.Argv[0] == legacyArgv[0] && opts.DebugShell == legacyShell {
		_ = os.MkdirAll(c.path("/run/gcs"), 0o755)
	}
	var primary int
	if len(argv) > 0 {
		pid, err := Launch(c.Root, argv, stdio)
		if err != nil {
			return fail(err)
		}
		primary = pid
		c.marker("started %s (pid %d)", strings.Join(argv, " "), pid)
	}
	if opts.DebugShell != "" {
		pid, err := Launch(c.Root, []string{opts.DebugShell}, [3]uintptr{0, 1, 2})
		if err != nil {
			return fail(err)
		}
		primary = pid
	}
	code, err := ReapUntil(primary, nil)
	if err != nil {
		return fail(err)
	}
	c.Log.Errorf("primary process exited with status %d; the VM stops", code)
	fmt.Fprintf(os.Stderr, "opengcs-init: primary process exited with status %d\n", code)
	return code
}

// startServices starts optional daemons the image may carry (docs/boot.md,
// "init (PID 1)": Services); they are reaped like any orphan.
func (c *Config) startServices() {
	services := [][]string{
		{"/bin/nvidia-persistenced"},
		{"/bin/nv-fabricmanager", "-c", "/usr/share/nvidia/nvswitch/fabricmanager.cfg"},
	}
	for _, s := range services {
		if _, err := os.Stat(c.path(s[0])); err != nil {
			continue
		}
		if _, err := Launch(c.Root, s, [3]uintptr{0, 1, 2}); err != nil {
			c.Log.Warnf("start %s: %v", s[0], err)
		} else {
			c.Log.Infof("started %s", s[0])
		}
	}
}
