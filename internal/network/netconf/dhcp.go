package netconf

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netns"

	"github.com/opengcs/opengcs/internal/command"
)

// Defaults of DHCPClient.
const (
	DefaultDHCPCommand = "udhcpc"
	DefaultDHCPScript  = "/sbin/udhcpc_config.script"
	DefaultDHCPTimeout = 30 * time.Second
)

// DHCPClient runs a udhcpc-compatible client once for an interface:
// `<Command...> -q -i <ifname> -s <Script>`.
type DHCPClient struct {
	// Command is the client and any leading arguments; {DefaultDHCPCommand}
	// when empty.
	Command []string
	// Script is the lease script; DefaultDHCPScript when empty.
	Script string
	// Timeout bounds one run; DefaultDHCPTimeout when 0.
	Timeout time.Duration
	// Runner runs the client (command.Plain when nil; the gcs passes its
	// reaper).
	Runner command.Runner
}

// Run obtains a lease for ifname inside the network namespace ns. The client
// is killed when ctx ends or the timeout passes.
func (d DHCPClient) Run(ctx context.Context, log *logrus.Entry, ns netns.NsHandle, ifname string) error {
	argv := d.Command
	if len(argv) == 0 {
		argv = []string{DefaultDHCPCommand}
	}
	script := d.Script
	if script == "" {
		script = DefaultDHCPScript
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDHCPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	args := append(append([]string{}, argv[1:]...), "-q", "-i", ifname, "-s", script)
	cmd := exec.Command(argv[0], args...)
	log = log.WithFields(logrus.Fields{"ifname": ifname, "command": strings.Join(cmd.Args, " "), "timeout": timeout.String()})
	log.Debug("running DHCP client")
	var out []byte
	err := runInNetNS(ns, func() error {
		var rerr error
		out, rerr = command.CombinedOutput(ctx, d.Runner, cmd)
		return rerr
	})
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		log.WithError(err).WithField("output", string(out)).Warn("DHCP client failed")
		return fmt.Errorf("%w on %s: %w: %s", ErrDHCP, ifname, err, strings.TrimSpace(string(out)))
	}
	log.WithField("output", string(out)).Debug("DHCP client succeeded")
	return nil
}

// runInNetNS calls fn on an OS thread that has joined the network namespace
// ns; processes fn starts inherit that namespace. The work happens on a
// fresh goroutine whose thread is locked for the duration: if the thread's
// original namespace cannot be restored, the goroutine exits still locked,
// and the Go runtime then throws the thread away instead of reusing it.
func runInNetNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- fmt.Errorf("restore network namespace: %w (after %v)", err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
