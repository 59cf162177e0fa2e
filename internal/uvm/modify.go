package uvm

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/policy"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// Storage performs the storage resources of ModifySettings. Each method
// takes the decoded settings and returns a *prot.Error on failure. The
// policy seam wraps the same method set (policy.GuardStorage), so the two
// share one definition.
type Storage = policy.Storage

// Network keeps the network namespace records and moves NICs.
type Network interface {
	AddAdapter(ctx context.Context, s *prot.LCOWNetworkAdapter) error
	RemoveAdapter(ctx context.Context, nsID, id string) error
	Bind(ctx context.Context, nsID string, pid int) error
	BindHost(ctx context.Context, nsID string) error
	EnsureNamespace(nsID string)
	RemoveNamespace(nsID string)
	// AdapterSettings returns the settings of a namespace's adapters.
	AdapterSettings(nsID string) ([]prot.LCOWNetworkAdapter, error)
}

// decodeSettings decodes the Settings object of a request.
func decodeSettings(req *prot.ModificationRequest, v any) error {
	if len(req.Settings) == 0 || string(req.Settings) == "null" {
		return prot.Errorf(prot.HrVmcomputeInvalidJSON, "%s %s: Settings are missing", req.RequestType, req.ResourceType)
	}
	if err := json.Unmarshal(req.Settings, v); err != nil {
		return prot.Errorf(prot.HrVmcomputeInvalidJSON, "%s %s: invalid Settings: %v", req.RequestType, req.ResourceType, err)
	}
	return nil
}

func unsupported(req *prot.ModificationRequest) error {
	return prot.Errorf(prot.HrFail, "the RequestType %q is not supported for %s", req.RequestType, req.ResourceType)
}

// ModifySettings dispatches a resource change (docs/resources.md).
func (h *Host) ModifySettings(ctx context.Context, id string, req *prot.ModificationRequest) error {
	if id != prot.NullContainerID {
		return h.modifyContainer(ctx, id, req)
	}
	switch req.ResourceType {
	case prot.ResourceMappedVirtualDisk, prot.ResourceSCSIDevice, prot.ResourceVPMemDevice,
		prot.ResourceMappedDirectory, prot.ResourceCombinedLayers:
		if h.cfg.Storage == nil {
			return prot.Errorf(prot.HrFail, "%s is not available in this gcs", req.ResourceType)
		}
		return h.modifyStorage(ctx, req)
	case prot.ResourceNetwork:
		if h.cfg.Network == nil {
			return prot.Errorf(prot.HrFail, "networking is not available in this gcs")
		}
		return h.modifyNetwork(ctx, req)
	case prot.ResourceVPCIDevice:
		return h.modifyVPCI(ctx, req)
	case prot.ResourceContainerConstraints:
		return prot.Errorf(prot.HrVmcomputeSystemNotFound, "ContainerConstraints needs a container id, not the utility VM")
	case prot.ResourceSecurityPolicy:
		var v prot.ConfidentialOptions
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		return h.policy.SetPolicy(ctx, v)
	case prot.ResourceSecurityPolicyFragment:
		var v prot.SecurityPolicyFragment
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		return h.policy.InjectFragment(ctx, v)
	case prot.ResourcePodCgroupMemoryLimit:
		if req.RequestType != prot.RequestTypeUpdate {
			return unsupported(req)
		}
		if h.cfg.UpdatePodMemoryLimit == nil {
			return prot.Errorf(prot.HrFail, "PodCgroupMemoryLimit is not available in this gcs")
		}
		if err := h.cfg.UpdatePodMemoryLimit(); err != nil {
			return prot.Errorf(prot.HrFail, "PodCgroupMemoryLimit: %v", err)
		}
		return nil
	default:
		return prot.Errorf(prot.HrFail, "invalid ResourceType %q", req.ResourceType)
	}
}

func (h *Host) modifyStorage(ctx context.Context, req *prot.ModificationRequest) error {
	s := h.cfg.Storage
	add, remove := req.RequestType == prot.RequestTypeAdd, req.RequestType == prot.RequestTypeRemove
	switch req.ResourceType {
	case prot.ResourceMappedVirtualDisk:
		var v prot.LCOWMappedVirtualDisk
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		switch {
		case add:
			return s.AddMappedVirtualDisk(ctx, &v)
		case remove:
			return s.RemoveMappedVirtualDisk(ctx, &v)
		}
	case prot.ResourceSCSIDevice:
		var v prot.SCSIDevice
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		if remove {
			return s.RemoveSCSIDevice(ctx, &v)
		}
	case prot.ResourceVPMemDevice:
		var v prot.LCOWMappedVPMemDevice
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		switch {
		case add:
			return s.AddVPMem(ctx, &v)
		case remove:
			return s.RemoveVPMem(ctx, &v)
		}
	case prot.ResourceMappedDirectory:
		var v prot.LCOWMappedDirectory
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		switch {
		case add:
			return s.AddMappedDirectory(ctx, &v)
		case remove:
			return s.RemoveMappedDirectory(ctx, &v)
		}
	case prot.ResourceCombinedLayers:
		var v prot.LCOWCombinedLayers
		if err := decodeSettings(req, &v); err != nil {
			return err
		}
		switch {
		case add:
			return s.AddCombinedLayers(ctx, &v)
		case remove:
			return s.RemoveCombinedLayers(ctx, &v)
		}
	}
	return unsupported(req)
}

func (h *Host) modifyNetwork(ctx context.Context, req *prot.ModificationRequest) error {
	var v prot.LCOWNetworkAdapter
	if err := decodeSettings(req, &v); err != nil {
		return err
	}
	switch req.RequestType {
	case prot.RequestTypeAdd:
		return h.cfg.Network.AddAdapter(ctx, &v)
	case prot.RequestTypeRemove:
		return h.cfg.Network.RemoveAdapter(ctx, v.NamespaceID, v.ID)
	}
	return unsupported(req)
}

// vpciAddWait bounds how long VPCIDevice Add waits for the device (the
// reference waits as long as the request lasts; a host that gave up
// should not leave a request behind forever).
const vpciAddWait = 60 * time.Second

// modifyVPCI waits, on Add, for the assigned PCI device to show up in
// sysfs, as the reference does (upstream
// internal/guest/runtime/hcsv2/uvm.go, modifyMappedVPCIDevice); the device
// is given to the containers whose spec names it at their Create. Like the
// reference, only Add is served.
func (h *Host) modifyVPCI(ctx context.Context, req *prot.ModificationRequest) error {
	if h.cfg.VPCI == nil {
		return prot.Errorf(prot.HrFail, "VPCIDevice: assigned PCI devices are not available in this gcs")
	}
	var v prot.LCOWMappedVPCIDevice
	if err := decodeSettings(req, &v); err != nil {
		return err
	}
	if req.RequestType != prot.RequestTypeAdd {
		return unsupported(req)
	}
	ctx, cancel := context.WithTimeout(ctx, vpciAddWait)
	defer cancel()
	p, err := h.cfg.VPCI.Wait(ctx, v.VMBusGUID)
	if err != nil {
		return prot.Errorf(prot.HrFail, "VPCIDevice Add %s: %v", v.VMBusGUID, err)
	}
	h.log.WithFields(logrus.Fields{"vmbus": v.VMBusGUID, "path": p}).Info("assigned PCI device present")
	return nil
}

// modifyContainer handles the only container-level resource.
func (h *Host) modifyContainer(ctx context.Context, id string, req *prot.ModificationRequest) error {
	c, err := h.containers.lookup(id)
	if err != nil {
		return err
	}
	if req.ResourceType != prot.ResourceContainerConstraints {
		return prot.Errorf(prot.HrFail, "%s cannot target container %s", req.ResourceType, id)
	}
	var v prot.LCOWContainerConstraints
	if err := decodeSettings(req, &v); err != nil {
		return err
	}
	if err := c.rc.Update(ctx, &v.Linux); err != nil {
		return runtimeError(fmt.Sprintf("update constraints of %s", id), err)
	}
	return nil
}
