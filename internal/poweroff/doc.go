// Package poweroff ends the utility VM on the host's shutdown request.
//
// A host may send the shutdown request more than once (a retry after a
// timeout, or two callers racing). Switch makes that safe: the first call
// announces the shutdown on Done, and every call flushes the file systems
// and asks the kernel to power off. Nothing panics on a second call.
package poweroff
