// Package etcfiles renders and writes the name-service files a sandbox gets:
// hostname, hosts and resolv.conf. Writes are atomic (temporary file in the
// same directory, then rename), so a reader never sees a half-written file.
//
// The content rules follow docs/spec lifecycle.md §5.3.
package etcfiles
