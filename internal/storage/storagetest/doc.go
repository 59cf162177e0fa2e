// Package storagetest holds helpers for the storage packages' tests: real
// loop devices attached with LOOP_CONFIGURE, tmpfs scratch areas, ext4/xfs
// image files, and leak checks that fail a test which leaves mounts or loop
// devices behind. Everything it sets up is torn down in t.Cleanup.
package storagetest
