// Package network keeps the guest's network namespace records and puts the
// host's NICs where they belong.
//
// The host announces each NIC with a Network ModifySettings request naming
// an HNS namespace id. Manager records the NIC under that namespace (lower-
// cased id) and resolves its interface name through a Resolver (sysfs in
// production, see package ifname). Once the sandbox or standalone container
// of the namespace exists, Bind records its init pid and moves every NIC not
// moved yet into that process's network namespace and configures it (package
// netconf). NICs added after Bind are moved at once. BindHost configures the
// NICs in place for host-networking containers.
//
// The files a sandbox needs (hostname, hosts, resolv.conf) are written by
// the pod spec setup (internal/oci) from AdapterSettings.
package network
