// Package netconf configures one network adapter: it optionally moves the
// link from the utility VM's root network namespace into a container's
// namespace, then sets MTU, addresses, policy rules and routes over netlink,
// or runs the DHCP client when no address was given.
//
// Every step that changes the system records how to undo itself. Apply
// either succeeds and hands back an Applied (whose Undo reverses the whole
// configuration later, if the caller needs to), or fails and has already
// reverted what it did, so a failure leaves both namespaces as they were.
//
// Netlink calls go through handles opened inside the namespace they target,
// so no goroutine has to switch namespaces for them; only starting the DHCP
// client needs a thread inside the target namespace (see runInNetNS).
package netconf
