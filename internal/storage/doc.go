// Package storage is the guest's ModifySettings storage front: Manager has
// one method per storage resource operation (MappedVirtualDisk, SCSIDevice,
// VPMemDevice, MappedDirectory, CombinedLayers), validates the host's
// settings and returns prot.Errors carrying the HRESULT to answer with. The
// work itself is done by the sub-packages, one per way storage arrives.
package storage
