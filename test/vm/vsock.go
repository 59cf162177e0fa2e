package vm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opengcs/opengcs/service/gcs/transport"
)

// The host's vsock ports: boot entropy, the gcs's log, and the bridge.
const (
	EntropyPort = 1
	LogPort     = 109
	BridgePort  = 0x40000000
	// EntropyBytes is how much randomness the host sends at boot.
	EntropyBytes = 512
)

// VsockConfig describes one VM whose host channels are all AF_VSOCK,
// through a vhost-user-vsock-pci device served by bin/vhost-vsock.
type VsockConfig struct {
	Image    *Image
	Dir      string // work directory: sockets, logs (keep the path short)
	MemoryMB int    // default 256
	// Backend is the vhost-vsock binary.
	Backend string
	// CID is the guest's context id (default 3).
	CID uint32
	// GCSArgs are appended to the production init arguments.
	GCSArgs []string
	// Accel is QEMU's accelerator (default tcg).
	Accel string
	// Extra are extra kernel parameters (before "--").
	Extra string
	// TestOut adds the TestOutPortName virtio-serial port (written to
	// VsockVM.TestOut): a test-only output channel, not the bridge.
	TestOut bool
}

// VsockVM is a running QEMU plus its vhost-vsock back-end. The host side
// is hybrid vsock: Transport listens on and dials the back-end's unix
// sockets as the gcs's -transport unix:<prefix> would.
type VsockVM struct {
	qemu       *exec.Cmd
	backend    *exec.Cmd
	Transport  *transport.Unix
	Console    string // serial console log
	QEMULog    string // qemu's own output
	BackendLog string // vhost-vsock's log
	GCSLog     string // what the gcs (through vsockexec) wrote to port 109
	TestOut    string // the test output port's file (VsockConfig.TestOut)
	QMPPath    string
	Started    time.Time

	bridge     net.Listener
	listeners  []net.Listener
	exited     chan struct{}
	waitErr    error
	backendErr chan error
	logWG      sync.WaitGroup
	mu         sync.Mutex
	logFailed  []string // port-109 lines that are not JSON objects with time, level, msg
}

// StartVsock starts the back-end and QEMU with the host's kernel command
// line (no test switches; GCSArgs appended) and the host-side listeners
// for ports 1, 109 and the bridge.
func StartVsock(cfg VsockConfig) (*VsockVM, error) {
	if err := CheckQEMU(); err != nil {
		return nil, err
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = 256
	}
	cid := cfg.CID
	if cid == 0 {
		cid = 3
	}
	v := &VsockVM{
		Transport:  transport.NewUnix(filepath.Join(cfg.Dir, "v")),
		Console:    filepath.Join(cfg.Dir, "console.log"),
		QEMULog:    filepath.Join(cfg.Dir, "qemu.log"),
		BackendLog: filepath.Join(cfg.Dir, "vhost-vsock.log"),
		GCSLog:     filepath.Join(cfg.Dir, "gcs.log"),
		QMPPath:    filepath.Join(cfg.Dir, "qmp.sock"),
		exited:     make(chan struct{}),
		backendErr: make(chan error, 1),
	}
	ok := false
	defer func() {
		if !ok {
			v.closeListeners()
		}
	}()
	if err := v.listenHost(); err != nil {
		return nil, err
	}
	vhostSock := filepath.Join(cfg.Dir, "vhost.sock")
	blog, err := os.Create(v.BackendLog)
	if err != nil {
		return nil, err
	}
	v.backend = exec.Command(cfg.Backend, "-socket", vhostSock, "-uds", v.Transport.Prefix,
		"-cid", strconv.Itoa(int(cid)), "-loglevel", "debug")
	v.backend.Stdout, v.backend.Stderr = blog, blog
	if err := v.backend.Start(); err != nil {
		blog.Close()
		return nil, fmt.Errorf("start vhost-vsock: %w", err)
	}
	go func() {
		v.backendErr <- v.backend.Wait()
		blog.Close()
	}()
	if err := waitSocket(vhostSock, v.backendErr); err != nil {
		v.backend.Process.Kill()
		return nil, err
	}

	accel := cfg.Accel
	if accel == "" {
		accel = "tcg"
	}
	appendLine := strings.Join([]string{BaseCmdline, cfg.Extra, "--", strings.Join(append([]string{InitArgs}, cfg.GCSArgs...), " ")}, " ")
	args := []string{
		"-accel", accel, "-nographic", "-nodefaults", "-no-reboot", "-no-user-config",
		"-M", "q35,memory-backend=mem", "-bios", QbootROM, "-m", fmt.Sprint(mem), "-smp", "1",
		"-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", mem),
		"-kernel", cfg.Image.Kernel, "-initrd", cfg.Image.Initrd,
		"-append", appendLine,
		"-serial", "file:" + v.Console,
		"-chardev", "socket,id=vsock,path=" + vhostSock,
		"-device", "vhost-user-vsock-pci,chardev=vsock",
		"-device", "virtio-scsi-pci,id=scsi0",
		"-qmp", "unix:" + v.QMPPath + ",server=on,wait=off",
	}
	if cfg.TestOut {
		v.TestOut = filepath.Join(cfg.Dir, "testout.log")
		args = append(args, "-device", "virtio-serial-pci,id=vser0,max_ports=2",
			"-chardev", "file,id=testout,path="+v.TestOut,
			"-device", "virtserialport,bus=vser0.0,chardev=testout,name="+TestOutPortName)
	}
	qlog, err := os.Create(v.QEMULog)
	if err != nil {
		v.backend.Process.Kill()
		return nil, err
	}
	v.qemu = exec.Command(QEMUBinary, args...)
	v.qemu.Stdout, v.qemu.Stderr = qlog, qlog
	v.Started = time.Now()
	if err := v.qemu.Start(); err != nil {
		qlog.Close()
		v.backend.Process.Kill()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		v.waitErr = v.qemu.Wait()
		qlog.Close()
		close(v.exited)
	}()
	ok = true
	return v, nil
}

// waitSocket waits until the back-end listens on path.
func waitSocket(path string, exited <-chan error) error {
	for i := 0; i < 500; i++ {
		// Only a stat: the back-end serves the first connection it accepts.
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("vhost-vsock exited: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("vhost-vsock did not create %s", path)
}

// listenHost opens the host's ports: entropy (random bytes, then close),
// the log (each line checked like the host's JSON log reader), and the
// bridge (handed out by AcceptBridge).
func (v *VsockVM) listenHost() error {
	el, err := v.Transport.Listen(EntropyPort)
	if err != nil {
		return err
	}
	ll, err := v.Transport.Listen(LogPort)
	if err != nil {
		el.Close()
		return err
	}
	bl, err := v.Transport.Listen(BridgePort)
	if err != nil {
		el.Close()
		ll.Close()
		return err
	}
	v.listeners = []net.Listener{el, ll}
	v.bridge = bl
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			b := make([]byte, EntropyBytes)
			rand.Read(b)
			c.Write(b)
			c.Close()
		}
	}()
	f, err := os.Create(v.GCSLog)
	if err != nil {
		return err
	}
	v.logWG.Add(1)
	go func() {
		defer v.logWG.Done()
		defer f.Close()
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			v.readLog(c, f)
		}
	}()
	return nil
}

// readLog copies the gcs's log to w and records every line that is not
// one JSON object with time, level and msg.
func (v *VsockVM) readLog(c net.Conn, w io.Writer) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		fmt.Fprintf(w, "%s\n", line)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil || m["time"] == nil || m["level"] == nil || m["msg"] == nil {
			v.mu.Lock()
			v.logFailed = append(v.logFailed, string(line))
			v.mu.Unlock()
		}
	}
}

// NonJSONLogLines returns the port-109 lines that a host's JSON log
// reader would choke on.
func (v *VsockVM) NonJSONLogLines() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.logFailed...)
}

// AcceptBridge waits for the gcs to dial the bridge port.
func (v *VsockVM) AcceptBridge(ctx context.Context) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := v.bridge.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("accept bridge: %w", r.err)
		}
		return r.c, nil
	case <-v.exited:
		v.bridge.Close()
		return nil, fmt.Errorf("%w: %v", ErrExited, v.waitErr)
	case <-ctx.Done():
		v.bridge.Close()
		return nil, fmt.Errorf("accept bridge: %w", ctx.Err())
	}
}

// DialGuest opens a connection to a port the guest listens on (hybrid
// vsock: CONNECT on the back-end's socket).
func (v *VsockVM) DialGuest(port uint32) (net.Conn, error) {
	c, err := net.Dial("unix", v.Transport.Prefix)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReader(io.LimitReader(c, 64))
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "OK ") {
		c.Close()
		return nil, fmt.Errorf("connect to guest port %d: %q, %v", port, line, err)
	}
	return c, nil
}

// CPUTime returns the CPU time QEMU and the back-end have used so far
// (user plus system, from /proc/<pid>/stat).
func (v *VsockVM) CPUTime() (qemu, backend time.Duration, err error) {
	if qemu, err = procCPUTime(v.qemu.Process.Pid); err != nil {
		return 0, 0, err
	}
	backend, err = procCPUTime(v.backend.Process.Pid)
	return qemu, backend, err
}

// procCPUTime reads utime+stime of pid (clock ticks of 10 ms).
func procCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// Exited is closed when QEMU has exited.
func (v *VsockVM) Exited() <-chan struct{} { return v.exited }

// Wait waits for QEMU to exit or ctx to end.
func (v *VsockVM) Wait(ctx context.Context) error {
	select {
	case <-v.exited:
		return v.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BackendExit waits for the back-end to exit after QEMU did, and returns
// its exit error.
func (v *VsockVM) BackendExit(ctx context.Context) error {
	select {
	case err := <-v.backendErr:
		v.backendErr <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DialQMP connects to QEMU's monitor.
func (v *VsockVM) DialQMP(ctx context.Context) (*QMP, error) {
	return (&VM{VsockVM: v}).DialQMP(ctx)
}

// Kill stops QEMU and the back-end if they still run.
func (v *VsockVM) Kill() {
	select {
	case <-v.exited:
	default:
		_ = v.qemu.Process.Kill()
		<-v.exited
	}
	select {
	case err := <-v.backendErr:
		v.backendErr <- err
	case <-time.After(10 * time.Second):
		_ = v.backend.Process.Kill()
	}
	v.closeListeners()
	v.logWG.Wait()
}

func (v *VsockVM) closeListeners() {
	for _, l := range v.listeners {
		l.Close()
	}
	if v.bridge != nil {
		v.bridge.Close()
	}
}

// Logs returns the console, QEMU's output, the back-end's log and the
// gcs's port-109 log, for failure reports.
func (v *VsockVM) Logs() string {
	var b strings.Builder
	for _, f := range []struct{ name, path string }{
		{"console", v.Console}, {"qemu", v.QEMULog}, {"vhost-vsock", v.BackendLog}, {"gcs log (port 109)", v.GCSLog},
	} {
		data, _ := os.ReadFile(f.path)
		if len(data) > 64<<10 {
			data = append([]byte("...\n"), data[len(data)-64<<10:]...)
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f.name, data)
	}
	return b.String()
}
