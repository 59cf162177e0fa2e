// Command init is the utility VM's PID 1 (see internal/initproc); this
// file only wires it to the real root. Never run it outside a VM.
package main
