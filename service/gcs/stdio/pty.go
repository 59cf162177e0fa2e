package stdio

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenPty allocates a pseudo-terminal pair, as an external process with
// EmulateConsole needs: the master is non-blocking (ready for NewTtyRelay),
// the slave is an ordinary blocking descriptor opened without becoming the
// caller's controlling terminal, mode 0600 and owned by 0:0. Both are
// close-on-exec.
func OpenPty() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	defer func() {
		if err != nil {
			master.Close()
		}
	}()
	var n uint32
	var ierr error
	rc, err := master.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("pty master: %w", err)
	}
	if err := rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			ierr = fmt.Errorf("unlockpt: %w", ierr)
			return
		}
		if n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); ierr != nil {
			ierr = fmt.Errorf("ptsname: %w", ierr)
		}
	}); err != nil {
		return nil, nil, fmt.Errorf("pty master: %w", err)
	}
	if ierr != nil {
		return nil, nil, ierr
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Fchmod(sfd, 0o600); err != nil {
		unix.Close(sfd)
		return nil, nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := unix.Fchown(sfd, 0, 0); err != nil {
		unix.Close(sfd)
		return nil, nil, fmt.Errorf("chown %s: %w", path, err)
	}
	return master, os.NewFile(uintptr(sfd), path), nil
}
