// Package plan9 mounts a directory the host shares over Plan 9
// (docs/resources.md, "MappedDirectory"): it dials the host's 9p server
// through a transport.Transport and hands the connection's descriptor to the
// kernel with a 9p trans=fd mount.
package plan9
