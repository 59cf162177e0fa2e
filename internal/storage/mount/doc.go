// Package mount holds the small mount helpers every storage kind shares:
// unmount-and-remove of a guest mount point (peeling stacked mounts, never
// deleting through a live mount), propagation-option handling and a
// mountinfo lookup.
package mount
