// Package bench holds benchmarks of the real gcs binary driven through the
// host client: request round trips over the unix transport and the idle
// memory footprint. Run them with `make bench` (docs/performance.md).
package bench
