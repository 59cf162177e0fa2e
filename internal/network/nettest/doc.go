// Package nettest builds throwaway network fixtures for the network
// packages' tests: network namespaces owned by a sleeping process, veth
// pairs inside them, and fake sysfs trees naming those veths. Everything is
// removed in t.Cleanup. Tests using it must run as root.
package nettest
