package initproc

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// LoopbackUp sets IFF_UP|IFF_RUNNING on "lo" through an AF_INET and an
// AF_INET6 socket; a missing address family is skipped (docs/boot.md, "init
// (PID 1)": Loopback). It acts on the calling thread's network namespace.
func LoopbackUp() error {
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		if err := ifUp("lo", family); err != nil {
			return err
		}
	}
	return nil
}

func ifUp(name string, family int) error {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket for %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("ifreq %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}
