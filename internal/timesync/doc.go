// Package timesync keeps the utility VM's clock in step with the host. It
// finds the Hyper-V PTP clock (the /sys/class/ptp device whose clock_name
// is "hyperv"), writes a chronyd configuration that uses it as a reference
// clock, and runs chronyd in the foreground under a restart monitor that
// restarts it with exponential back-off (capped at 10 minutes) whenever it
// exits.
//
// The image must provide chronyd. Without it Start returns
// ErrChronydNotFound after writing the configuration; hcsshim's GCS in the
// same situation only logs a warning each time its restart monitor fails to
// launch chronyd, so callers should log this error rather than exit.
package timesync
