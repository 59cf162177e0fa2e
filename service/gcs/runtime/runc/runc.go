package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/service/gcs/runtime"
)

// Defaults of Options.
const (
	DefaultBinary   = "runc"
	DefaultRoot     = "/run/runc"
	DefaultStateDir = "/var/run/gcsrunc"
)

// Options configure New.
type Options struct {
	// Binary is the runc executable: a path, or a name looked up in PATH
	// (DefaultBinary if empty).
	Binary string
	// Root is runc's state directory, passed as --root (DefaultRoot).
	Root string
	// StateDir holds the driver's own files (DefaultStateDir).
	StateDir string
	// NoPivot passes --no-pivot to runc create; required when the root
	// filesystem is an initramfs.
	NoPivot bool
	// Reaper starts and waits for every child. Required.
	Reaper *reaper.Reaper
	// Logger receives structured logs; nil discards them.
	Logger *logrus.Entry
}

// Runtime drives runc. It implements runtime.Runtime.
type Runtime struct {
	binary   string
	root     string
	stateDir string
	noPivot  bool
	reaper   *reaper.Reaper
	log      *logrus.Entry

	mu         sync.Mutex
	containers map[string]*Container // nil value: id reserved by a Create in progress
}

var _ runtime.Runtime = (*Runtime)(nil)

// New checks the options and creates StateDir.
func New(opts Options) (*Runtime, error) {
	if opts.Reaper == nil {
		return nil, ErrNoReaper
	}
	r := &Runtime{
		binary:     opts.Binary,
		root:       opts.Root,
		stateDir:   opts.StateDir,
		noPivot:    opts.NoPivot,
		reaper:     opts.Reaper,
		log:        opts.Logger,
		containers: make(map[string]*Container),
	}
	if r.binary == "" {
		r.binary = DefaultBinary
	}
	if r.root == "" {
		r.root = DefaultRoot
	}
	if r.stateDir == "" {
		r.stateDir = DefaultStateDir
	}
	if r.log == nil {
		r.log = logging.Discard()
	}
	if !strings.Contains(r.binary, "/") {
		p, err := exec.LookPath(r.binary)
		if err != nil {
			return nil, fmt.Errorf("runc: find binary: %w", err)
		}
		r.binary = p
	}
	if err := os.MkdirAll(r.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("runc: create state dir: %w", err)
	}
	return r, nil
}

// Binary is the runc executable in use.
func (r *Runtime) Binary() string { return r.binary }

// call describes one runc invocation.
type call struct {
	command string   // subcommand
	args    []string // its flags and arguments
	id      string   // container id, for errors and logs
	bundle  string   // if set, the log is appended to <bundle>/runc.log
	stdin   io.Reader
}

// newLog creates the per-call log file.
func (r *Runtime) newLog(command string) (string, error) {
	f, err := os.CreateTemp(r.stateDir, "runc-"+command+"-*.log")
	if err != nil {
		return "", fmt.Errorf("runc: create log file: %w", err)
	}
	f.Close()
	return f.Name(), nil
}

func (r *Runtime) command(logPath string, c call) *exec.Cmd {
	args := []string{"--root", r.root, "--log", logPath, "--log-format", "json", c.command}
	return exec.Command(r.binary, append(args, c.args...)...)
}

// keepLog appends a call's log to the bundle's runc.log (best effort).
func (r *Runtime) keepLog(c call, log []byte) {
	if c.bundle == "" || len(log) == 0 {
		return
	}
	f, err := os.OpenFile(filepath.Join(c.bundle, "runc.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		r.log.WithError(err).WithField("bundle", c.bundle).Debug("runc: cannot keep log")
		return
	}
	defer f.Close()
	_, _ = f.Write(log)
}

// run runs a short runc command to completion and returns its stdout.
func (r *Runtime) run(ctx context.Context, c call) ([]byte, error) {
	logPath, err := r.newLog(c.command)
	if err != nil {
		return nil, err
	}
	cmd := r.command(logPath, c)
	cmd.Stdin = c.stdin
	res, err := r.reaper.Run(ctx, cmd)
	log := readLog(logPath)
	r.keepLog(c, log)
	entry := r.log.WithFields(logrus.Fields{"command": c.command, "cid": c.id})
	if err != nil {
		rerr := newError(c.command, c.id, log, res.Stderr, err)
		entry.WithError(rerr).Debug("runc: command failed")
		return nil, rerr
	}
	entry.Debug("runc: command done")
	return res.Stdout, nil
}

// startDetached runs runc create or runc exec: runc gets the container
// process's stdio as its own and exits once the process exists. It returns
// after runc exited successfully.
func (r *Runtime) startDetached(ctx context.Context, c call, stdio runtime.StdioFiles) error {
	logPath, err := r.newLog(c.command)
	if err != nil {
		return err
	}
	cmd := r.command(logPath, c)
	if stdio.Stdin != nil {
		cmd.Stdin = stdio.Stdin
	}
	if stdio.Stdout != nil {
		cmd.Stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		cmd.Stderr = stdio.Stderr
	}
	p, err := r.reaper.Start(cmd)
	if err != nil {
		os.Remove(logPath)
		return fmt.Errorf("runc %s %s: %w", c.command, c.id, err)
	}
	exit, werr := p.Wait(ctx)
	if werr != nil {
		// Do not leave runc running unobserved: kill it and collect it.
		_ = p.Signal(unix.SIGKILL)
		exit, _ = p.Wait(context.Background())
	}
	log := readLog(logPath)
	r.keepLog(c, log)
	entry := r.log.WithFields(logrus.Fields{"command": c.command, "cid": c.id, "exit": exit.Code()})
	if werr != nil {
		entry.WithError(werr).Debug("runc: cancelled")
		return fmt.Errorf("runc %s %s: %w", c.command, c.id, werr)
	}
	if exit.Code() != 0 {
		// runc also prints the error on its stderr, which is the container's
		// stderr here; the log is the only copy we can read.
		rerr := newError(c.command, c.id, log, nil, &reaper.ExitError{Exit: exit})
		entry.WithError(rerr).Debug("runc: command failed")
		return rerr
	}
	entry.Debug("runc: command done")
	return nil
}

// readPid reads a pid file written by runc.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q", path, b)
	}
	return pid, nil
}

// readSpec loads <bundle>/config.json.
func readSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode bundle config: %w", err)
	}
	return &s, nil
}

// Get returns a container created by this Runtime.
func (r *Runtime) Get(id string) (runtime.Container, error) {
	if err := runtime.ValidateID(id); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		return nil, fmt.Errorf("container %s: %w", id, runtime.ErrContainerDoesNotExist)
	}
	return c, nil
}

// List returns the state of every container in runc's root.
func (r *Runtime) List(ctx context.Context) ([]runtime.State, error) {
	out, err := r.run(ctx, call{command: "list", args: []string{"--format", "json"}})
	if err != nil {
		return nil, err
	}
	var states []runtime.State
	if err := json.Unmarshal(bytes.TrimSpace(out), &states); err != nil {
		return nil, fmt.Errorf("runc list: decode %q: %w", out, err)
	}
	return states, nil
}

// reserve claims id for a Create in progress.
func (r *Runtime) reserve(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[id]; ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrContainerAlreadyExists)
	}
	r.containers[id] = nil
	return nil
}

func (r *Runtime) release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, id)
}

func (r *Runtime) register(c *Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.containers[c.id] = c
}

func (r *Runtime) containerDir(id string) string { return filepath.Join(r.stateDir, id) }
