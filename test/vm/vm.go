package vm

import (
	"context"
	"net"
)

// BaseCmdline is the kernel command line measured fastest under TCG
// (docs/vm.md); reboot=t plus -no-reboot makes a guest reboot, power-off
// or panic end QEMU.
const BaseCmdline = "console=ttyS0 quiet panic=-1 reboot=t cryptomgr.notests mitigations=off tsc=reliable no_timer_check audit=0 8250.nr_uarts=1 i8042.noaux i8042.nopnp random.trust_cpu=on"

// InitArgs are the production init arguments (what a host passes after
// "--"); the virtio-serial switch makes init run the gcs without the
// vsockexec wrapper. Config.GCSArgs are appended.
const InitArgs = "-e 1 /bin/vsockexec -e 109 /bin/gcs -v4 -log-format json -loglevel debug"

// TestOutPortName names the optional second virtio-serial port whose guest
// writes land in VM.TestOut on the host (a QEMU file chardev).
const TestOutPortName = "opengcs.testout"

// Config describes one VM.
type Config struct {
	Image    *Image
	Dir      string // work directory: sockets, logs (keep the path short)
	MemoryMB int    // default 256
	Extra    string // extra kernel parameters
	// GCSArgs are appended to the gcs command line (after InitArgs).
	GCSArgs []string
	// TestOut adds the TestOutPortName port (written to VM.TestOut).
	TestOut bool
	// Backend is the bin/vhost-vsock binary that gives the guest AF_VSOCK.
	Backend string
}

// VM is one running QEMU whose host channels are AF_VSOCK, as on a real
// host: a VsockVM (entropy on port 1, the gcs's log on port 109, the
// bridge on 0x40000000) with the fields the tests use.
type VM struct {
	*VsockVM
	Stderr string // path of qemu's own output
}

// Start launches the back-end and QEMU with the host's command line. The
// caller must Kill (or Wait for) the VM.
func Start(cfg Config) (*VM, error) {
	vs, err := StartVsock(VsockConfig{Image: cfg.Image, Dir: cfg.Dir, MemoryMB: cfg.MemoryMB, Backend: cfg.Backend,
		GCSArgs: cfg.GCSArgs, Extra: cfg.Extra, TestOut: cfg.TestOut})
	if err != nil {
		return nil, err
	}
	return &VM{VsockVM: vs, Stderr: vs.QEMULog}, nil
}

// Accept waits for the gcs to dial the bridge.
func (v *VM) Accept(ctx context.Context) (net.Conn, error) { return v.AcceptBridge(ctx) }
