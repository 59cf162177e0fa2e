package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/service/gcs/runtime"
)

// Process is a process exec'd into a container. It implements
// runtime.Process.
type Process struct {
	cid     string
	proc    *reaper.Proc
	console *os.File
}

var _ runtime.Process = (*Process)(nil)

// Pid is the process id in the GCS's pid namespace.
func (p *Process) Pid() int { return p.proc.Pid() }

// Console is the pty master (nil without a terminal); the caller owns it.
func (p *Process) Console() *os.File { return p.console }

// Wait returns the exit code once the process has been reaped.
func (p *Process) Wait(ctx context.Context) (int, error) {
	e, err := p.proc.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("wait for process %d in %s: %w", p.proc.Pid(), p.cid, err)
	}
	return e.Code(), nil
}

// Done is closed when the process has been reaped.
func (p *Process) Done() <-chan struct{} { return p.proc.Done() }

// Signal sends sig to the process directly.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal process %d in %s: %w", p.proc.Pid(), p.cid, runtime.ErrProcessDoesNotExist)
		}
		return fmt.Errorf("signal process %d in %s: %w", p.proc.Pid(), p.cid, err)
	}
	return nil
}
