// Package e2e holds black-box tests of the real gcs binary: each test
// starts bin/gcs in private namespaces (internal/gcstest) and speaks the
// bridge protocol to it through the host-side client, checking what a host
// would see.
package e2e
