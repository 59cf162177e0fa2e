package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/opengcs/opengcs/internal/reaper"
)

// Runner runs cmd to completion. cmd must be built with exec.Command (not
// CommandContext); its stdio, if set, must be *os.File (nil is
// /dev/null). ctx ending kills the process.
type Runner interface {
	Run(ctx context.Context, cmd *exec.Cmd) error
}

// Plain runs commands with os/exec's own wait. Use it only in a process
// that does not reap its children itself.
type Plain struct{}

// Run starts cmd and waits for it, killing it when ctx ends.
func (Plain) Run(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	if err != nil && ctx.Err() != nil {
		err = errors.Join(ctx.Err(), err)
	}
	return err
}

// Reaper runs commands through the process's child reaper.
func Reaper(r *reaper.Reaper) Runner { return reaperRunner{r} }

type reaperRunner struct{ r *reaper.Reaper }

func (rr reaperRunner) Run(ctx context.Context, cmd *exec.Cmd) error {
	_, err := rr.r.Run(ctx, cmd)
	return err
}

// Or returns r, or Plain when r is nil.
func Or(r Runner) Runner {
	if r == nil {
		return Plain{}
	}
	return r
}

// CombinedOutput runs cmd through r and returns its stdout and stderr
// interleaved.
func CombinedOutput(ctx context.Context, r Runner, cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	err := Stream(ctx, r, cmd, &out)
	return out.Bytes(), err
}

// Stream runs cmd through r with its stdout and stderr copied to w while
// it runs.
func Stream(ctx context.Context, r Runner, cmd *exec.Cmd, w io.Writer) error {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return errors.New("command: Stdout or Stderr already set")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("command: output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(w, pr)
		pr.Close()
		close(copied)
	}()
	err = Or(r).Run(ctx, cmd)
	pw.Close()
	<-copied
	return err
}
