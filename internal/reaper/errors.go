package reaper

import "errors"

var (
	// ErrClosed is returned by operations on a Reaper after Close.
	ErrClosed = errors.New("reaper: closed")
	// ErrUnsupportedCmd is returned by Start for an exec.Cmd that would need
	// exec.Cmd.Wait to finish its work: one created by exec.CommandContext, or
	// one whose Stdin/Stdout/Stderr is an io.Reader/io.Writer that is not an
	// *os.File. Run and Output handle non-file readers and writers themselves.
	ErrUnsupportedCmd = errors.New("reaper: command needs exec.Cmd.Wait")
)
