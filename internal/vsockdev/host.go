package vsockdev

import (
	"fmt"
	"net"
	"os"
	"time"
)

// connectLineTimeout bounds how long a host client may take to send its
// CONNECT line.
const connectLineTimeout = 10 * time.Second

// ListenHost listens on the unix socket UDSPrefix for host processes
// that connect into the guest, replacing a stale socket file.
func (d *Device) ListenHost() error {
	p := d.opts.UDSPrefix
	if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSocket != 0 {
		os.Remove(p)
	}
	l, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("listen %s: %w", p, err)
	}
	d.mu.Lock()
	d.listener = l
	d.mu.Unlock()
	d.wg.Add(1)
	go d.acceptLoop(l)
	return nil
}

func (d *Device) acceptLoop(l net.Listener) {
	defer d.wg.Done()
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		d.wg.Add(1)
		go d.hostConnect(nc.(*net.UnixConn))
	}
}

// readConnectLine reads up to and including '\n', byte by byte so that
// nothing after the line is consumed.
func readConnectLine(nc net.Conn) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) <= maxConnectLine {
		if _, err := nc.Read(b[:]); err != nil {
			return "", err
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			return string(line), nil
		}
	}
	return "", fmt.Errorf("no newline in %d bytes: %w", len(line), ErrBadConnectLine)
}

// hostConnect handles one host process's CONNECT.
func (d *Device) hostConnect(nc *net.UnixConn) {
	defer d.wg.Done()
	nc.SetReadDeadline(time.Now().Add(connectLineTimeout))
	line, err := readConnectLine(nc)
	var port uint32
	if err == nil {
		port, err = ParseConnect(line)
	}
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		d.log.WithError(err).Warn("vsock: bad host connect request")
		nc.Close()
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		nc.Close()
		return
	}
	key := connKey{guest: port}
	for {
		key.host = d.nextPort
		d.nextPort++
		if d.nextPort == 0 {
			d.nextPort = firstHostPort
		}
		if d.conns[key] == nil {
			break
		}
	}
	c := d.newConnLocked(key, stateRequested)
	c.host = nc
	c.log.Debug("vsock: host connect")
	d.queueLocked(c, OpRequest, 0, nil)
	d.flushRxLocked()
}
