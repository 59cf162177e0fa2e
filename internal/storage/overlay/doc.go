// Package overlay mounts and unmounts a container's root file system: an
// overlayfs union of read-only layers with an optional writable scratch
// directory (docs/resources.md, "CombinedLayers"), including the bind of the
// bundle onto the scratch disk when the scratch lives outside the bundle.
package overlay
