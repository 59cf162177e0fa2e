package poweroff

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Options configure New. Nil functions take the real system calls; tests
// pass their own so that nothing is powered off.
type Options struct {
	// Sync flushes the file systems (unix.Sync if nil).
	Sync func()
	// Reboot is reboot(2) (unix.Reboot if nil); it is called with
	// unix.LINUX_REBOOT_CMD_POWER_OFF.
	Reboot func(cmd int) error
}

// Switch powers the VM off. The zero value is not usable: create one with
// New.
type Switch struct {
	sync   func()
	reboot func(int) error
	once   sync.Once
	done   chan struct{}
}

// New returns a Switch that has not been used yet.
func New(opts Options) *Switch {
	s := &Switch{sync: opts.Sync, reboot: opts.Reboot, done: make(chan struct{})}
	if s.sync == nil {
		s.sync = unix.Sync
	}
	if s.reboot == nil {
		s.reboot = unix.Reboot
	}
	return s
}

// Done is closed by the first PowerOff call.
func (s *Switch) Done() <-chan struct{} { return s.done }

// PowerOff announces the shutdown (once), flushes the file systems and
// powers the machine off. On a VM it does not return when it succeeds; in a
// PID namespace reboot(2) ends the namespace's init instead. It may be called
// any number of times, concurrently too.
func (s *Switch) PowerOff() error {
	s.once.Do(func() { close(s.done) })
	s.sync()
	if err := s.reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("poweroff: reboot(POWER_OFF): %w", err)
	}
	return nil
}
