package prot

import specs "github.com/opencontainers/runtime-spec/specs-go"

// ResourceType values of a ModificationRequest.
const (
	ResourceMappedVirtualDisk      = "MappedVirtualDisk"
	ResourceSCSIDevice             = "SCSIDevice"
	ResourceVPMemDevice            = "VPMemDevice"
	ResourceMappedDirectory        = "MappedDirectory"
	ResourceCombinedLayers         = "CombinedLayers"
	ResourceNetwork                = "Network"
	ResourceVPCIDevice             = "VPCIDevice"
	ResourceContainerConstraints   = "ContainerConstraints"
	ResourceSecurityPolicy         = "SecurityPolicy"
	ResourceSecurityPolicyFragment = "SecurityPolicyFragment"
	ResourcePodCgroupMemoryLimit   = "PodCgroupMemoryLimit"
)

// LCOWMappedVirtualDisk mounts (or exposes) a SCSI disk.
type LCOWMappedVirtualDisk struct {
	MountPath        string            `json:"MountPath,omitempty"`
	Controller       uint8             `json:"Controller,omitempty"`
	Lun              uint8             `json:"Lun,omitempty"`
	Partition        uint64            `json:"Partition,omitempty"`
	ReadOnly         bool              `json:"ReadOnly,omitempty"`
	Encrypted        bool              `json:"Encrypted,omitempty"`
	Options          []string          `json:"Options,omitempty"`
	BlockDev         bool              `json:"BlockDev,omitempty"`
	EnsureFilesystem bool              `json:"EnsureFilesystem,omitempty"`
	Filesystem       string            `json:"Filesystem,omitempty"`
	VerityInfo       *DeviceVerityInfo `json:"VerityInfo,omitempty"`
}

// DeviceVerityInfo is the deprecated host-supplied verity description.
type DeviceVerityInfo struct {
	Ext4SizeInBytes int64  `json:"Ext4SizeInBytes,omitempty"`
	Version         int    `json:"Version,omitempty"`
	Algorithm       string `json:"Algorithm,omitempty"`
	SuperBlock      bool   `json:"SuperBlock,omitempty"`
	RootDigest      string `json:"RootDigest,omitempty"`
	Salt            string `json:"Salt,omitempty"`
	BlockSize       int    `json:"BlockSize,omitempty"`
}

// SCSIDevice names a SCSI device for guest-side unplug.
type SCSIDevice struct {
	Controller uint8 `json:"Controller,omitempty"`
	Lun        uint8 `json:"Lun,omitempty"`
}

// LCOWMappedVPMemDevice mounts a VPMem layer.
type LCOWMappedVPMemDevice struct {
	DeviceNumber uint32                `json:"DeviceNumber,omitempty"`
	MountPath    string                `json:"MountPath,omitempty"`
	MappingInfo  *LCOWVPMemMappingInfo `json:"MappingInfo,omitempty"`
	VerityInfo   *DeviceVerityInfo     `json:"VerityInfo,omitempty"`
}

// LCOWVPMemMappingInfo locates one layer inside a multi-mapped device.
type LCOWVPMemMappingInfo struct {
	DeviceOffsetInBytes uint64 `json:"DeviceOffsetInBytes,omitempty"`
	DeviceSizeInBytes   uint64 `json:"DeviceSizeInBytes,omitempty"`
}

// LCOWMappedDirectory mounts a Plan 9 share served by the host.
type LCOWMappedDirectory struct {
	MountPath string `json:"MountPath,omitempty"`
	Port      int32  `json:"Port,omitempty"`
	ShareName string `json:"ShareName,omitempty"`
	ReadOnly  bool   `json:"ReadOnly,omitempty"`
}

// Layer is one read-only layer of a CombinedLayers request.
type Layer struct {
	ID       string `json:"Id,omitempty"`
	Path     string `json:"Path,omitempty"`
	PathType string `json:"PathType,omitempty"`
	Cache    string `json:"Cache,omitempty"`
}

// LCOWCombinedLayers mounts a container's overlay root filesystem.
type LCOWCombinedLayers struct {
	ContainerID       string  `json:"ContainerID,omitempty"`
	ContainerRootPath string  `json:"ContainerRootPath,omitempty"`
	Layers            []Layer `json:"Layers,omitempty"`
	ScratchPath       string  `json:"ScratchPath,omitempty"`
}

// IPConfig is one address of a network adapter.
type IPConfig struct {
	IPAddress    string `json:"IPAddress,omitempty"`
	PrefixLength uint8  `json:"PrefixLength,omitempty"`
}

// Route is one route of a network adapter.
type Route struct {
	NextHop           string `json:"NextHop,omitempty"`
	DestinationPrefix string `json:"DestinationPrefix,omitempty"`
	Metric            uint16 `json:"Metric,omitempty"`
}

// LCOWNetworkAdapter adds a NIC to a network namespace.
type LCOWNetworkAdapter struct {
	NamespaceID        string     `json:"NamespaceID,omitempty"`
	ID                 string     `json:"ID,omitempty"`
	MacAddress         string     `json:"MacAddress,omitempty"`
	DNSSuffix          string     `json:"DNSSuffix,omitempty"`
	DNSServerList      string     `json:"DNSServerList,omitempty"`
	EncapOverhead      uint16     `json:"EncapOverhead,omitempty"`
	VPCIAssigned       bool       `json:"VPCIAssigned,omitempty"`
	IPConfigs          []IPConfig `json:"IPConfigs,omitempty"`
	Routes             []Route    `json:"Routes,omitempty"`
	PolicyBasedRouting bool       `json:"PolicyBasedRouting,omitempty"`
	EnableLowMetric    bool       `json:"EnableLowMetric,omitempty"`
}

// LCOWMappedVPCIDevice waits for an assigned PCI device.
type LCOWMappedVPCIDevice struct {
	VMBusGUID string `json:"VMBusGUID,omitempty"`
}

// LCOWContainerConstraints updates a container's resources.
type LCOWContainerConstraints struct {
	Windows specs.WindowsResources `json:"Windows"`
	Linux   specs.LinuxResources   `json:"Linux"`
}

// ConfidentialOptions sets the security policy.
type ConfidentialOptions struct {
	EnforcerType                    string `json:"EnforcerType,omitempty"`
	EncodedSecurityPolicy           string `json:"EncodedSecurityPolicy,omitempty"`
	EncodedUVMReference             string `json:"EncodedUVMReference,omitempty"`
	EncodedUVMHashEnvelopeReference string `json:"EncodedUVMHashEnvelopeReference,omitempty"`
}

// SecurityPolicyFragment injects a signed policy fragment.
type SecurityPolicyFragment struct {
	Fragment  string `json:"Fragment,omitempty"`
	MediaType string `json:"MediaType,omitempty"`
}
