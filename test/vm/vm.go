package vm

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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
	Dir      string // work directory: sockets, console log
	MemoryMB int    // default 256
	Extra    string // extra kernel parameters
	// GCSArgs are appended to the gcs command line (after InitArgs).
	GCSArgs []string
	// TestOut adds the TestOutPortName port (written to VM.TestOut).
	TestOut bool
}

// VM is one running QEMU.
type VM struct {
	cmd      *exec.Cmd
	listener net.Listener
	Console  string // path of the serial console log
	Stderr   string // path of qemu's own output
	TestOut  string // path of the test output port's file (Config.TestOut)
	QMPPath  string // QMP socket (see DialQMP)
	exited   chan struct{}
	waitErr  error
	Started  time.Time
}

// Start launches QEMU. The caller must Kill (or Wait for) the VM.
func Start(cfg Config) (*VM, error) {
	if err := CheckQEMU(); err != nil {
		return nil, err
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = 256
	}
	sock := filepath.Join(cfg.Dir, "bridge.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", sock, err)
	}
	v := &VM{
		listener: l,
		Console:  filepath.Join(cfg.Dir, "console.log"),
		Stderr:   filepath.Join(cfg.Dir, "qemu.log"),
		QMPPath:  filepath.Join(cfg.Dir, "qmp.sock"),
		exited:   make(chan struct{}),
	}
	initArgs := strings.Join(append([]string{InitArgs}, cfg.GCSArgs...), " ")
	appendLine := strings.Join([]string{BaseCmdline, "opengcs.bridge=virtio-serial", cfg.Extra, "--", initArgs}, " ")
	args := []string{
		"-accel", "tcg", "-nographic", "-nodefaults", "-no-reboot", "-no-user-config",
		"-M", "q35", "-bios", QbootROM, "-m", fmt.Sprint(mem), "-smp", "1",
		"-kernel", cfg.Image.Kernel, "-initrd", cfg.Image.Initrd,
		"-append", appendLine,
		"-serial", "file:" + v.Console,
		"-device", "virtio-serial-pci,id=vser0,max_ports=8",
		"-chardev", "socket,id=bridge,path=" + sock,
		"-device", "virtserialport,bus=vser0.0,chardev=bridge,name=opengcs.bridge",
		"-device", "virtio-scsi-pci,id=scsi0",
		"-qmp", "unix:" + v.QMPPath + ",server=on,wait=off",
	}
	if cfg.TestOut {
		v.TestOut = filepath.Join(cfg.Dir, "testout.log")
		args = append(args,
			"-chardev", "file,id=testout,path="+v.TestOut,
			"-device", "virtserialport,bus=vser0.0,chardev=testout,name="+TestOutPortName)
	}
	logf, err := os.Create(v.Stderr)
	if err != nil {
		l.Close()
		return nil, err
	}
	v.cmd = exec.Command(QEMUBinary, args...)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	v.Started = time.Now()
	if err := v.cmd.Start(); err != nil {
		l.Close()
		logf.Close()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		v.waitErr = v.cmd.Wait()
		logf.Close()
		close(v.exited)
	}()
	return v, nil
}

// Accept waits for QEMU to connect the bridge port's socket. QEMU
// connects at start; data flows once the gcs opens the port.
func (v *VM) Accept(ctx context.Context) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := v.listener.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("accept bridge: %w", r.err)
		}
		return r.c, nil
	case <-v.exited:
		v.listener.Close()
		return nil, fmt.Errorf("%w: %v", ErrExited, v.waitErr)
	case <-ctx.Done():
		v.listener.Close()
		return nil, fmt.Errorf("accept bridge: %w", ctx.Err())
	}
}

// Exited is closed when QEMU has exited.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// Wait waits for QEMU to exit or ctx to end.
func (v *VM) Wait(ctx context.Context) error {
	select {
	case <-v.exited:
		return v.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill stops QEMU if it still runs and waits for it.
func (v *VM) Kill() {
	select {
	case <-v.exited:
	default:
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
	v.listener.Close()
}

// Logs returns the console log and qemu's own output, for failure reports.
func (v *VM) Logs() string {
	con, _ := os.ReadFile(v.Console)
	q, _ := os.ReadFile(v.Stderr)
	return fmt.Sprintf("--- console ---\n%s\n--- qemu ---\n%s", con, q)
}
