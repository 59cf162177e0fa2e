package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/cgroup"
	"github.com/opengcs/opengcs/internal/command"
	"github.com/opengcs/opengcs/internal/coredump"
	"github.com/opengcs/opengcs/internal/kmsg"
	"github.com/opengcs/opengcs/internal/timesync"
)

// corePatternFile is where -core-dump-location is written.
const corePatternFile = "/proc/sys/kernel/core_pattern"

// startDuties performs the start-up duties of docs/boot.md, "Start-up order",
// that come before the bridge: core pattern, kernel log forwarding, the
// cgroup layout with its memory monitoring, and time synchronisation. The
// returned layout is torn down by the caller when the gcs leaves.
func startDuties(ctx context.Context, o *options, log *logrus.Entry, run command.Runner) (*cgroup.Hierarchy, *cgroup.Layout, error) {
	start := time.Now()
	if o.coreDumpLocation != "" {
		if err := coredump.SetPattern(corePatternFile, o.coreDumpLocation); err != nil {
			return nil, nil, fmt.Errorf("-core-dump-location: %w", err)
		}
	}
	fwd := &kmsg.Forwarder{Level: kmsg.Priority(o.kmsgLogLevel), Log: log.WithField("component", "kmsg")}
	go func() {
		if err := fwd.ReadFile(ctx, kmsg.DefaultPath); err != nil && ctx.Err() == nil {
			log.WithError(err).Warn("kernel log forwarding stopped")
		}
	}()

	h, err := cgroup.Open(o.cgroupRoot, cgroup.WithBase(o.cgroupPrefix))
	if err != nil {
		return nil, nil, fmt.Errorf("cgroups: %w", err)
	}
	layout, err := cgroup.SetupLayout(h, cgroup.LayoutConfig{RootMemReserve: o.rootMemReserve, Pid: os.Getpid()})
	if err != nil {
		return nil, nil, fmt.Errorf("cgroup layout: %w", err)
	}
	go layout.RunLimitUpdater(ctx, time.Minute, log)
	events := &cgroup.EventLogger{StartTime: start, Settle: time.Second, Log: log.WithField("component", "memory")}
	threshold, err := layout.GCS.WatchMemoryThreshold(ctx, o.gcsMemLimit)
	if err != nil {
		layout.Teardown()
		return nil, nil, fmt.Errorf("memory threshold event on the gcs cgroup: %w", err)
	}
	oom, err := layout.Pods.WatchOOM(ctx)
	if err != nil {
		layout.Teardown()
		return nil, nil, fmt.Errorf("OOM event on the containers' cgroup: %w", err)
	}
	go events.Run(ctx, layout.GCS, threshold)
	go events.Run(ctx, layout.Pods, oom)

	if err := os.MkdirAll("/var/run/gcsrunc", 0o700); err != nil {
		layout.Teardown()
		return nil, nil, fmt.Errorf("runc wrapper state directory: %w", err)
	}
	// A missing Hyper-V clock is fatal; chronyd missing or dying is only
	// logged by its restart monitor (docs/boot.md, "Start-up failures").
	err = timesync.Start(ctx, timesync.Config{
		Disabled: o.disableTimeSync,
		SysRoot:  o.sysfsRoot,
		DevDir:   o.devRoot,
		Runner:   run,
		Log:      log.WithField("component", "timesync"),
	})
	if err != nil {
		layout.Teardown()
		return nil, nil, fmt.Errorf("time synchronisation (use -disable-time-sync where the VM has no Hyper-V clock): %w", err)
	}
	return h, layout, nil
}
