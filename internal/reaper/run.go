package reaper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ExitError is returned by Run and CombinedOutput when the command exited
// with a non-zero code.
type ExitError struct {
	Exit
	// Stderr is the captured standard error, when Run captured it.
	Stderr []byte
}

func (e *ExitError) Error() string {
	msg := e.Exit.String()
	if s := strings.TrimSpace(string(e.Stderr)); s != "" {
		msg += ": " + s
	}
	return msg
}

// Result is what Run collected from a finished command.
type Result struct {
	Exit   Exit
	Stdout []byte // captured only when cmd.Stdout was nil
	Stderr []byte // captured only when cmd.Stderr was nil
}

// Run runs cmd to completion through the Reaper; it replaces exec.Cmd.Run
// and Output. Stdout and Stderr left nil are captured into the Result;
// *os.File values are handed to the child; other readers and writers are
// copied through pipes. Run returns after the process was reaped and its
// output pipes reached EOF (a grandchild holding them delays that). If ctx
// ends first the process is killed with SIGKILL and Run returns ctx's error
// after reaping it. A non-zero exit gives an *ExitError along with the Result.
func (r *Reaper) Run(ctx context.Context, cmd *exec.Cmd) (Result, error) {
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	res, err := r.run(ctx, cmd)
	res.Stdout = stdout.Bytes()
	res.Stderr = stderr.Bytes()
	var ee *ExitError
	if errors.As(err, &ee) && ee.Stderr == nil {
		ee.Stderr = res.Stderr
	}
	return res, err
}

// CombinedOutput runs cmd to completion and returns its stdout and stderr
// interleaved in one buffer, like exec.Cmd.CombinedOutput.
func (r *Reaper) CombinedOutput(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("reaper: CombinedOutput: Stdout or Stderr already set")
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	_, err := r.run(ctx, cmd)
	var ee *ExitError
	if errors.As(err, &ee) {
		ee.Stderr = out.Bytes()
	}
	return out.Bytes(), err
}

// plumbing holds the pipes run creates for non-file stdio.
type plumbing struct {
	childEnds []*os.File // closed in the parent once the child started
	copies    sync.WaitGroup
	stdinW    *os.File
	mu        sync.Mutex
	errs      []error
}

func (pl *plumbing) fail(err error) {
	pl.mu.Lock()
	pl.errs = append(pl.errs, err)
	pl.mu.Unlock()
}

func (pl *plumbing) closeChildEnds() {
	for _, f := range pl.childEnds {
		f.Close()
	}
	pl.childEnds = nil
}

func (r *Reaper) run(ctx context.Context, cmd *exec.Cmd) (Result, error) {
	pl := &plumbing{}
	var parentEnds []*os.File
	cleanup := func() {
		pl.closeChildEnds()
		for _, f := range parentEnds {
			f.Close()
		}
	}

	if rd := cmd.Stdin; rd != nil {
		if _, isFile := rd.(*os.File); !isFile {
			pr, pw, err := os.Pipe()
			if err != nil {
				return Result{}, fmt.Errorf("reaper: stdin pipe: %w", err)
			}
			pl.childEnds = append(pl.childEnds, pr)
			parentEnds = append(parentEnds, pw)
			pl.stdinW = pw
			cmd.Stdin = pr
			pl.copies.Add(1)
			go func() {
				defer pl.copies.Done()
				if _, err := io.Copy(pw, rd); err != nil && !errors.Is(err, unix.EPIPE) && !errors.Is(err, os.ErrClosed) {
					pl.fail(fmt.Errorf("reaper: copy stdin: %w", err))
				}
				pw.Close()
			}()
		}
	}

	outputs := map[io.Writer]*os.File{}
	for _, w := range []*io.Writer{&cmd.Stdout, &cmd.Stderr} {
		if *w == nil {
			continue
		}
		if _, isFile := (*w).(*os.File); isFile {
			continue
		}
		if f, ok := outputs[*w]; ok { // Stdout and Stderr are the same writer
			*w = f
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			cleanup()
			return Result{}, fmt.Errorf("reaper: output pipe: %w", err)
		}
		pl.childEnds = append(pl.childEnds, pw)
		parentEnds = append(parentEnds, pr)
		dst := *w
		outputs[dst] = pw
		*w = pw
		pl.copies.Add(1)
		go func() {
			defer pl.copies.Done()
			if _, err := io.Copy(dst, pr); err != nil {
				pl.fail(fmt.Errorf("reaper: copy output: %w", err))
			}
			pr.Close()
		}()
	}

	p, err := r.Start(cmd)
	pl.closeChildEnds()
	if err != nil {
		for _, f := range parentEnds {
			f.Close()
		}
		pl.copies.Wait()
		return Result{}, err
	}

	var ctxErr error
	select {
	case <-p.Done():
	case <-ctx.Done():
		ctxErr = ctx.Err()
		_ = p.Signal(unix.SIGKILL)
		<-p.Done()
	}
	if pl.stdinW != nil {
		// The child is gone; stop feeding it.
		pl.stdinW.Close()
	}
	pl.copies.Wait()

	exit, _ := p.Exited()
	res := Result{Exit: exit}
	if ctxErr != nil {
		return res, fmt.Errorf("reaper: %s: %w", cmd.Path, ctxErr)
	}
	if len(pl.errs) > 0 {
		return res, errors.Join(pl.errs...)
	}
	if exit.Code() != 0 {
		return res, &ExitError{Exit: exit}
	}
	return res, nil
}
