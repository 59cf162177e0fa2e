// Package testutil holds fixtures for tests that run real containers: a
// busybox root filesystem (from Debian's busybox-static, installed by
// test/setup/deps.sh), a minimal OCI runtime spec that runc accepts, bundles
// combining the two, and the location of the runc binary built from go.mod
// (bin/runc, see the Makefile).
//
// It is imported only by _test.go files. Nothing here runs a child process
// except RuncBinary when bin/runc is missing, so call that before a test
// binary starts its reaper.Reaper.
package testutil
