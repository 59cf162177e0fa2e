package timesync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/command"
)

// clockName is the exact content of the Hyper-V PTP device's clock_name.
const clockName = "hyperv\n"

// ConfigName is the file name of the generated chronyd configuration.
const ConfigName = "chronyd.conf"

// Config says where to look and what to run. Empty fields take the guest's
// defaults.
type Config struct {
	// Disabled skips time synchronisation (-disable-time-sync).
	Disabled bool
	// SysRoot is the sysfs mount ("/sys").
	SysRoot string
	// DevDir is where the PTP device nodes are ("/dev").
	DevDir string
	// ConfDir receives chronyd.conf: the guest's root-level tmpfs ("/tmp").
	ConfDir string
	// Chronyd is the chronyd binary, a name looked up in PATH or a path
	// ("chronyd").
	Chronyd string
	// Backoff paces restarts; the zero value means DefaultBackoff.
	Backoff Backoff
	// Runner runs chronyd (command.Plain when nil; the gcs passes its
	// reaper).
	Runner command.Runner
	// Log receives chronyd's output and restart warnings; nil means the
	// standard logger.
	Log *logrus.Entry
}

func (c *Config) defaults() {
	if c.SysRoot == "" {
		c.SysRoot = "/sys"
	}
	if c.DevDir == "" {
		c.DevDir = "/dev"
	}
	if c.ConfDir == "" {
		c.ConfDir = "/tmp"
	}
	if c.Chronyd == "" {
		c.Chronyd = "chronyd"
	}
	if c.Backoff == (Backoff{}) {
		c.Backoff = DefaultBackoff
	}
	if c.Log == nil {
		c.Log = logrus.NewEntry(logrus.StandardLogger())
	}
}

// FindPTPClock returns the name ("ptp0", ...) of the PTP device under
// sysRoot/class/ptp whose clock_name is exactly "hyperv\n".
func FindPTPClock(sysRoot string) (string, error) {
	dir := filepath.Join(sysRoot, "class", "ptp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s missing: %w", dir, ErrNoPTPClock)
		}
		return "", fmt.Errorf("list PTP devices: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		file := filepath.Join(dir, n, "clock_name")
		b, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return "", fmt.Errorf("read %s: %w", file, err)
		}
		if string(b) == clockName {
			return n, nil
		}
	}
	return "", fmt.Errorf("%s: %w", dir, ErrNoPTPClock)
}

// ChronyConfig is chronyd's configuration for the PTP device at devPath:
// a PHC reference clock polled every 8 s (sampled 4x a second) at stratum
// 2, and stepping the clock whenever it is off by more than 0.1 s.
func ChronyConfig(devPath string) string {
	return fmt.Sprintf("refclock PHC %s poll 3 dpoll -2 offset 0 stratum 2\nmakestep 0.1 -1\n", devPath)
}

// WriteConfig writes ChronyConfig(devPath) to dir/chronyd.conf with mode
// 0644 and returns its path.
func WriteConfig(dir, devPath string) (string, error) {
	p := filepath.Join(dir, ConfigName)
	if err := os.WriteFile(p, []byte(ChronyConfig(devPath)), 0o644); err != nil {
		return "", fmt.Errorf("write chronyd config: %w", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		return "", fmt.Errorf("write chronyd config: %w", err)
	}
	return p, nil
}

// Start finds the Hyper-V PTP clock, writes the chronyd configuration and
// starts `chronyd -n -f <conf>` under Supervise until ctx ends. A missing
// PTP clock or an unwritable configuration is an error (fatal in the GCS);
// a missing chronyd binary returns ErrChronydNotFound (log it). With
// cfg.Disabled it does nothing.
func Start(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if cfg.Disabled {
		cfg.Log.Info("time synchronisation disabled")
		return nil
	}
	dev, err := FindPTPClock(cfg.SysRoot)
	if err != nil {
		return fmt.Errorf("start time sync: %w", err)
	}
	conf, err := WriteConfig(cfg.ConfDir, filepath.Join(cfg.DevDir, dev))
	if err != nil {
		return fmt.Errorf("start time sync: %w", err)
	}
	bin, err := exec.LookPath(cfg.Chronyd)
	if err != nil {
		return fmt.Errorf("start time sync: %s: %w", cfg.Chronyd, errors.Join(ErrChronydNotFound, err))
	}
	cfg.Log.WithFields(logrus.Fields{"ptp": dev, "config": conf}).Info("starting chronyd")
	// -n keeps chronyd in the foreground: a daemonising chronyd would look
	// like an exit to the restart monitor.
	go Supervise(ctx, cfg.Runner, func() *exec.Cmd {
		return exec.Command(bin, "-n", "-f", conf)
	}, cfg.Backoff, cfg.Log)
	return nil
}

// Backoff is an exponential back-off with jitter.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// Jitter randomises each delay by up to +/- this fraction.
	Jitter float64
}

// DefaultBackoff starts at 500 ms, grows 1.5x per restart and is capped at
// 10 minutes.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Minute, Multiplier: 1.5, Jitter: 0.5}

// delays returns a function yielding successive delays.
func (b Backoff) delays() func() time.Duration {
	cur := float64(b.Initial)
	return func() time.Duration {
		d := cur
		if b.Jitter > 0 {
			d += d * b.Jitter * (2*rand.Float64() - 1)
		}
		if d > float64(b.Max) {
			d = float64(b.Max)
		}
		cur *= b.Multiplier
		if cur > float64(b.Max) {
			cur = float64(b.Max)
		}
		return time.Duration(d)
	}
}

// Supervise runs the command newCmd builds through run, forever: each time
// it exits (or fails to start) its output is logged line by line and it is
// started again after the next back-off delay. It returns when ctx ends,
// which kills the command.
func Supervise(ctx context.Context, run command.Runner, newCmd func() *exec.Cmd, b Backoff, log *logrus.Entry) {
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	next := b.delays()
	for ctx.Err() == nil {
		cmd := newCmd()
		err := runLogged(ctx, run, cmd, log)
		if ctx.Err() != nil {
			return
		}
		log.WithFields(logrus.Fields{logrus.ErrorKey: err, "command": cmd.Args}).Warn("restart monitor: command exited")
		t := time.NewTimer(next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// runLogged runs cmd to completion with its output logged line by line as
// it comes.
func runLogged(ctx context.Context, run command.Runner, cmd *exec.Cmd, log *logrus.Entry) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log.WithField("command", cmd.Args[0]).Info(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := command.Stream(ctx, run, cmd, pw)
	pw.Close()
	<-done
	return err
}
