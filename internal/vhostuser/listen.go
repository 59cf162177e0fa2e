package vhostuser

import (
	"fmt"
	"net"
	"os"

	"github.com/sirupsen/logrus"
)

// Listen listens on the unix socket path (replacing a stale socket file)
// for the front-end.
func Listen(path string) (*net.UnixListener, error) {
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// ServeOne accepts one front-end on l, closes l, and serves dev to it
// until the front-end disconnects.
func ServeOne(l *net.UnixListener, dev Device, log *logrus.Entry) error {
	conn, err := l.AcceptUnix()
	l.Close()
	if err != nil {
		return fmt.Errorf("accept front-end: %w", err)
	}
	defer conn.Close()
	log.Info("vhost-user: front-end connected")
	return NewServer(conn, dev, log).Serve()
}
