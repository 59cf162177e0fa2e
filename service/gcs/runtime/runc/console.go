package runc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// consoleSocket is the listening end of runc's --console-socket. runc
// connects once and sends the pty master as one SCM_RIGHTS fd.
type consoleSocket struct {
	dir    string
	path   string
	l      *net.UnixListener
	result chan consoleResult
	// received is set once receive consumed the result.
	received bool
}

type consoleResult struct {
	f   *os.File
	err error
}

// newConsoleSocket listens in a fresh directory under stateDir. The path is
// kept short because sun_path holds at most 107 bytes.
func newConsoleSocket(stateDir string) (*consoleSocket, error) {
	dir, err := os.MkdirTemp(stateDir, "cs-")
	if err != nil {
		return nil, fmt.Errorf("console socket dir: %w", err)
	}
	path := filepath.Join(dir, "s")
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket path %s is too long", path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket listen: %w", err)
	}
	cs := &consoleSocket{dir: dir, path: path, l: l, result: make(chan consoleResult, 1)}
	go func() { cs.result <- cs.accept() }()
	return cs, nil
}

func (cs *consoleSocket) accept() consoleResult {
	conn, err := cs.l.AcceptUnix()
	if err != nil {
		return consoleResult{err: fmt.Errorf("console socket accept: %w", err)}
	}
	defer conn.Close()
	f, err := recvFd(conn)
	return consoleResult{f: f, err: err}
}

// recvFd reads one message carrying exactly one fd.
func recvFd(conn *net.UnixConn) (*os.File, error) {
	name := make([]byte, 4096) // runc sends the pty's name as the payload
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("console socket control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket: got %d fds, want 1", len(fds))
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// receive waits for the master once runc has exited successfully (runc
// sends it before returning, so it is pending by then).
func (cs *consoleSocket) receive(ctx context.Context) (*os.File, error) {
	select {
	case res := <-cs.result:
		cs.received = true
		return res.f, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("console socket: %w", ctx.Err())
	}
}

// close stops listening, removes the socket and, if receive did not take
// it, closes a master that arrives anyway.
func (cs *consoleSocket) close() error {
	err := cs.l.Close()
	if !cs.received {
		// accept returns once the listener is closed or its peer (runc, or
		// the container's runc init) is gone.
		go func() {
			if res := <-cs.result; res.f != nil {
				res.f.Close()
			}
		}()
	}
	if rerr := os.RemoveAll(cs.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}
