// Package virtq is the device side of a virtio split virtqueue living in
// guest memory: it takes descriptor chains the driver made available,
// checks every descriptor against guest memory, and returns chains in the
// used ring. Nothing the guest wrote is trusted: out-of-range heads,
// loops, oversized chains, indirect descriptors (not negotiated) and
// addresses outside guest memory are errors, never a crash.
//
// Layouts follow the virtio specification's "Split Virtqueues" section.
package virtq
