// Package uvm is the guest's state: the containers, processes and
// resources of one utility VM, and the rules that order and undo them.
//
// The bridge handlers call a *Host; the Host decides, and delegates the
// work to one package per concern: the container runtime (runc), the stdio
// relays, storage (layers and disks), networking and pod spec setup. The
// code is split by concern as well: containers.go (create, shutdown,
// delete, properties), processes.go (the process table, waits and exit-code
// retention), exec.go (init, exec and external processes), notify.go (the
// exit notification) and modify.go (ModifySettings).
package uvm
