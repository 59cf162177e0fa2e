package oci

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Kind is how the guest treats a container (docs/lifecycle.md, "Container
// kinds").
type Kind int

// The container kinds.
const (
	// KindUnknown is the zero value; Classify never returns it without an
	// error.
	KindUnknown Kind = iota
	// KindSandbox is a pod's sandbox (pause) container; it owns the pod
	// root and the pod cgroup.
	KindSandbox
	// KindWorkload is a container that joins an existing pod.
	KindWorkload
	// KindStandalone is a container without CRI annotations; it is its own
	// pod-less unit.
	KindStandalone
)

func (k Kind) String() string {
	switch k {
	case KindSandbox:
		return "sandbox"
	case KindWorkload:
		return "workload"
	case KindStandalone:
		return "standalone"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// CRI container-type values.
const (
	criTypeSandbox   = "sandbox"
	criTypeContainer = "container"
)

// ValidateID checks that id can be used as one path component (it names
// directories under /run/gcs and cgroups under /pods): non-empty, not "."
// or "..", and without "/" or NUL.
func ValidateID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return nil
}

// Classify decides the kind of container id from its spec annotations and
// returns the id of the pod it belongs to (docs/lifecycle.md, "Container
// kinds"):
//
//   - virtual-pod-id V set and id == V: sandbox of pod V, whatever the CRI
//     type says;
//   - container-type "sandbox": sandbox, pod id = V if set, else id;
//   - container-type "container": workload, pod id = V if set, else the
//     sandbox-id annotation (which must be non-empty);
//   - no container-type: standalone, pod id = id;
//   - any other container-type: ErrUnsupportedContainerType.
//
// All ids must pass ValidateID. Whether a workload's pod exists is for the
// caller to check.
func Classify(id string, annotations map[string]string) (Kind, string, error) {
	if err := ValidateID(id); err != nil {
		return KindUnknown, "", fmt.Errorf("container id: %w", err)
	}
	vpod := annotations[AnnotationVirtualPodID]
	if vpod != "" {
		if err := ValidateID(vpod); err != nil {
			return KindUnknown, "", fmt.Errorf("container %s: %s: %w", id, AnnotationVirtualPodID, err)
		}
		if id == vpod {
			return KindSandbox, vpod, nil
		}
	}
	criType, isCRI := annotations[AnnotationContainerType]
	if !isCRI {
		return KindStandalone, id, nil
	}
	switch criType {
	case criTypeSandbox:
		if vpod != "" {
			return KindSandbox, vpod, nil
		}
		return KindSandbox, id, nil
	case criTypeContainer:
		sid := vpod
		if sid == "" {
			sid = annotations[AnnotationSandboxID]
		}
		if sid == "" {
			return KindUnknown, "", fmt.Errorf("container %s: %w: %q", id, ErrMissingSandboxID, sid)
		}
		if err := ValidateID(sid); err != nil {
			return KindUnknown, "", fmt.Errorf("container %s: %s: %w", id, AnnotationSandboxID, err)
		}
		return KindWorkload, sid, nil
	default:
		return KindUnknown, "", fmt.Errorf("container %s: %w: %q", id, ErrUnsupportedContainerType, criType)
	}
}

// IsVirtualPodSandbox reports whether container id is the sandbox of a
// virtual pod: its id is the virtual-pod-id annotation. Such a sandbox may
// come before any adapter of its network namespace (the reference creates
// the namespace record for it, upstream
// internal/guest/runtime/hcsv2/sandbox_container.go).
func IsVirtualPodSandbox(id string, annotations map[string]string) bool {
	v := annotations[AnnotationVirtualPodID]
	return v != "" && v == id
}

// SandboxRoot is the pod root directory of a sandbox whose bundle is bundle:
// the bundle itself, or <dirname(bundle)>/virtual-pods/<V> for a container of
// virtual pod V (docs/lifecycle.md, "Virtual pods" and "Guest directory
// layout").
func SandboxRoot(bundle string, annotations map[string]string) (string, error) {
	vpod := annotations[AnnotationVirtualPodID]
	if vpod == "" {
		return filepath.Clean(bundle), nil
	}
	if err := ValidateID(vpod); err != nil {
		return "", fmt.Errorf("%s: %w", AnnotationVirtualPodID, err)
	}
	return filepath.Join(filepath.Dir(filepath.Clean(bundle)), "virtual-pods", vpod), nil
}

// CgroupsPath is the linux.cgroupsPath of a container: /pods/<sid>/<id>
// for sandboxes and workloads, /pods/<id> for standalone containers.
func CgroupsPath(kind Kind, sandboxID, id string) string {
	if kind == KindStandalone {
		return "/pods/" + id
	}
	return "/pods/" + sandboxID + "/" + id
}

// PodCgroupPath is the cgroup of pod sid: /pods/<sid>.
func PodCgroupPath(sandboxID string) string { return "/pods/" + sandboxID }
