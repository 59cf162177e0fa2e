package oci

import (
	"strconv"
	"strings"
)

// Annotation names the guest reads from a container's OCI spec (upstream
// pkg/annotations).
const (
	// AnnotationContainerType is the CRI container type: "sandbox" or
	// "container".
	AnnotationContainerType = "io.kubernetes.cri.container-type"
	// AnnotationSandboxID names a workload container's pod.
	AnnotationSandboxID = "io.kubernetes.cri.sandbox-id"
	// AnnotationVirtualPodID groups containers into a virtual pod sharing
	// the UVM with other pods.
	AnnotationVirtualPodID = "io.microsoft.cri.virtual-pod-id"
	// AnnotationSkipPodNetworking ("true", any case) lets a sandbox start
	// without a network namespace record.
	AnnotationSkipPodNetworking = "io.microsoft.cri.skip-pod-networking"
	// AnnotationHostNetwork (bool) runs a sandbox or standalone container
	// in the UVM's network namespace.
	AnnotationHostNetwork = "io.microsoft.virtualmachine.lcow.hostnetwork"
	// AnnotationPrivileged (bool) gives a workload every UVM device.
	AnnotationPrivileged = "io.microsoft.virtualmachine.lcow.privileged"
	// AnnotationShmSizeKB sets the size of the workload's /dev/shm in KiB.
	AnnotationShmSizeKB = "io.microsoft.lcow.shm.size-kb"
	// AnnotationRLimitCore is "<soft>;<hard>" for RLIMIT_CORE.
	AnnotationRLimitCore = "io.microsoft.lcow.rlimitcore"
	// AnnotationTeeLogPath is a file below <root>/logs that receives a copy
	// of the init's stdout and stderr.
	AnnotationTeeLogPath = "io.microsoft.container.lcow.tee-log-path"
	// AnnotationTeeLogDirMount is the container path at which <root>/logs
	// is bind-mounted.
	AnnotationTeeLogDirMount = "io.microsoft.container.lcow.tee-log-dir-mount"
	// AnnotationGPUCapabilities lists NVIDIA driver capabilities (unused:
	// GPU devices are not supported, see the package documentation).
	AnnotationGPUCapabilities = "io.microsoft.container.gpu.capabilities"
)

// parseBool reads a boolean annotation the way the upstream guest does
// (strconv.ParseBool); a missing or unparsable value gives def. The second
// result is false when a present value could not be parsed.
func parseBool(annotations map[string]string, key string, def bool) (bool, bool) {
	v, ok := annotations[key]
	if !ok {
		return def, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, false
	}
	return b, true
}

// SkipPodNetworking reports whether the skip-pod-networking annotation is
// "true" (case-insensitive).
func SkipPodNetworking(annotations map[string]string) bool {
	return strings.EqualFold(annotations[AnnotationSkipPodNetworking], "true")
}

// HostNetworkRequested reports whether the host-network annotation is set to
// a true value. For a workload the caller asks this of its sandbox's
// annotations (workloads inherit the sandbox's value; docs/lifecycle.md,
// "Create, step by step": Host networking).
func HostNetworkRequested(annotations map[string]string) bool {
	b, _ := parseBool(annotations, AnnotationHostNetwork, false)
	return b
}

// Privileged reports whether the privileged annotation is set to a true
// value.
func Privileged(annotations map[string]string) bool {
	b, _ := parseBool(annotations, AnnotationPrivileged, false)
	return b
}
