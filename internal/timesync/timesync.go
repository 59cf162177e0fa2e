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
	// Log receives chronyd's output and restart warnings; nil discards
	// them (the package never logs through logrus's standard logger).
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
	c.Log = orDiscard(c.Log)
}

// orDiscard returns log, or an entry that writes nowhere when log is nil.
func orDiscard(log *logrus.Entry) *logrus.Entry {
	if log != nil {
		return log
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
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
// runs `chronyd -n -f <conf>` under Supervise until ctx ends. Only a missing
// PTP clock or an unwritable configuration is returned (the gcs treats it as
// fatal, as the reference does). chronyd itself is looked up each time the
// restart monitor starts it: a chronyd that is missing from the image, fails
// to start or dies is logged and tried again after the next back-off delay,
// never fatal. With cfg.Disabled it does nothing.
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
	cfg.Log.WithFields(logrus.Fields{"ptp": dev, "config": conf}).Info("starting chronyd under the restart monitor")
	// -n keeps chronyd in the foreground: a daemonising chronyd would look
	// like an exit to the restart monitor.
	go Supervise(ctx, cfg.Runner, func() (*exec.Cmd, error) {
		bin, err := exec.LookPath(cfg.Chronyd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Chronyd, errors.Join(ErrChronydNotFound, err))
		}
		return exec.Command(bin, "-n", "-f", conf), nil
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
// it exits, fails to start, or cannot be built (newCmd's error, such as a
// binary missing from the image) that is logged as a warning, with the
// command's output logged line by line as it comes, and the command is
// started again after the next back-off delay. It returns when ctx ends,
// which kills a running command. A nil log discards.
func Supervise(ctx context.Context, run command.Runner, newCmd func() (*exec.Cmd, error), b Backoff, log *logrus.Entry) {
	log = orDiscard(log)
	next := b.delays()
	for ctx.Err() == nil {
		cmd, err := newCmd()
		var args []string
		if err == nil {
			args = cmd.Args
			err = runLogged(ctx, run, cmd, log)
		}
		if ctx.Err() != nil {
			return
		}
		log.WithFields(logrus.Fields{logrus.ErrorKey: err, "command": args}).Warn("restart monitor: command exited")
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
