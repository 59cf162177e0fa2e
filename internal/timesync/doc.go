// Package timesync keeps the utility VM's clock in step with the host. It
// finds the Hyper-V PTP clock (the /sys/class/ptp device whose clock_name
// is "hyperv"), writes a chronyd configuration that uses it as a reference
// clock, and runs chronyd in the foreground under a restart monitor that
// restarts it with exponential back-off (capped at 10 minutes) whenever it
// exits.
//
// What is fatal follows hcsshim's guest (cmd/gcs/main.go,
// startTimeSyncService and runWithRestartMonitor): no Hyper-V clock, or a
// configuration that cannot be written, is an error of Start; chronyd
// missing from the image, failing to start or dying is only logged by the
// restart monitor, which keeps trying.
package timesync
