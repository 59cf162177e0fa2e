package oci

import (
	"errors"
	"testing"
)

func TestClassify(t *testing.T) {
	const (
		ctype = AnnotationContainerType
		sbid  = AnnotationSandboxID
		vpod  = AnnotationVirtualPodID
	)
	tests := []struct {
		name    string
		id      string
		ann     map[string]string
		kind    Kind
		sid     string
		wantErr error
	}{
		{name: "sandbox", id: "s1", ann: map[string]string{ctype: "sandbox", sbid: "s1"}, kind: KindSandbox, sid: "s1"},
		{name: "sandbox ignores sandbox-id", id: "s1", ann: map[string]string{ctype: "sandbox", sbid: "other"}, kind: KindSandbox, sid: "s1"},
		{name: "workload", id: "w1", ann: map[string]string{ctype: "container", sbid: "s1"}, kind: KindWorkload, sid: "s1"},
		{name: "workload without sandbox id", id: "w1", ann: map[string]string{ctype: "container"}, wantErr: ErrMissingSandboxID},
		{name: "workload with empty sandbox id", id: "w1", ann: map[string]string{ctype: "container", sbid: ""}, wantErr: ErrMissingSandboxID},
		{name: "workload with traversal sandbox id", id: "w1", ann: map[string]string{ctype: "container", sbid: "../x"}, wantErr: ErrInvalidID},
		{name: "unknown type", id: "c", ann: map[string]string{ctype: "pod"}, wantErr: ErrUnsupportedContainerType},
		{name: "empty type", id: "c", ann: map[string]string{ctype: ""}, wantErr: ErrUnsupportedContainerType},
		{name: "type is case sensitive", id: "c", ann: map[string]string{ctype: "Sandbox"}, wantErr: ErrUnsupportedContainerType},
		{name: "standalone nil annotations", id: "c", ann: nil, kind: KindStandalone, sid: "c"},
		{name: "standalone other annotations", id: "c", ann: map[string]string{sbid: "s"}, kind: KindStandalone, sid: "c"},
		{name: "virtual pod sandbox forced", id: "v", ann: map[string]string{ctype: "container", sbid: "s", vpod: "v"}, kind: KindSandbox, sid: "v"},
		{name: "virtual pod sandbox without type", id: "v", ann: map[string]string{vpod: "v"}, kind: KindSandbox, sid: "v"},
		{name: "virtual pod sandbox bad type", id: "v", ann: map[string]string{ctype: "bogus", vpod: "v"}, kind: KindSandbox, sid: "v"},
		{name: "virtual pod workload", id: "w", ann: map[string]string{ctype: "container", sbid: "s", vpod: "v"}, kind: KindWorkload, sid: "v"},
		{name: "virtual pod workload without sandbox id", id: "w", ann: map[string]string{ctype: "container", vpod: "v"}, kind: KindWorkload, sid: "v"},
		{name: "virtual pod second sandbox type", id: "x", ann: map[string]string{ctype: "sandbox", vpod: "v"}, kind: KindSandbox, sid: "v"},
		{name: "virtual pod member without type", id: "x", ann: map[string]string{vpod: "v"}, kind: KindStandalone, sid: "x"},
		{name: "virtual pod bad type", id: "x", ann: map[string]string{ctype: "bogus", vpod: "v"}, wantErr: ErrUnsupportedContainerType},
		{name: "virtual pod id traversal", id: "x", ann: map[string]string{vpod: ".."}, wantErr: ErrInvalidID},
		{name: "virtual pod id slash", id: "x", ann: map[string]string{vpod: "a/b"}, wantErr: ErrInvalidID},
		{name: "empty id", id: "", ann: map[string]string{ctype: "sandbox"}, wantErr: ErrInvalidID},
		{name: "id with slash", id: "a/b", ann: nil, wantErr: ErrInvalidID},
		{name: "id dotdot", id: "..", ann: nil, wantErr: ErrInvalidID},
		{name: "id with NUL", id: "a\x00", ann: nil, wantErr: ErrInvalidID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, sid, err := Classify(tc.id, tc.ann)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Classify = %v, %q, %v; want error %v", kind, sid, err, tc.wantErr)
				}
				if kind != KindUnknown {
					t.Errorf("kind on error = %v, want KindUnknown", kind)
				}
				return
			}
			if err != nil || kind != tc.kind || sid != tc.sid {
				t.Fatalf("Classify = %v, %q, %v; want %v, %q", kind, sid, err, tc.kind, tc.sid)
			}
		})
	}
}

func TestClassifyErrorMessage(t *testing.T) {
	_, _, err := Classify("c1", map[string]string{AnnotationContainerType: "pod"})
	want := `container c1: unsupported 'io.kubernetes.cri.container-type': "pod"`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}

func TestSandboxRoot(t *testing.T) {
	tests := []struct {
		bundle string
		ann    map[string]string
		want   string
		err    bool
	}{
		{bundle: "/run/gcs/c/s1", want: "/run/gcs/c/s1"},
		{bundle: "/run/gcs/c/s1/", want: "/run/gcs/c/s1"},
		{bundle: "/run/gcs/c/s1", ann: map[string]string{AnnotationVirtualPodID: "vp"}, want: "/run/gcs/c/virtual-pods/vp"},
		{bundle: "/run/gcs/pods/p/c", ann: map[string]string{AnnotationVirtualPodID: "vp"}, want: "/run/gcs/pods/p/virtual-pods/vp"},
		{bundle: "/run/gcs/c/s1", ann: map[string]string{AnnotationVirtualPodID: "../../etc"}, err: true},
	}
	for _, tc := range tests {
		got, err := SandboxRoot(tc.bundle, tc.ann)
		if tc.err {
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("SandboxRoot(%q, %v) = %q, %v; want ErrInvalidID", tc.bundle, tc.ann, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SandboxRoot(%q, %v) = %q, %v; want %q", tc.bundle, tc.ann, got, err, tc.want)
		}
	}
}

func TestCgroupsPath(t *testing.T) {
	tests := []struct {
		kind    Kind
		sid, id string
		want    string
	}{
		{KindSandbox, "s", "s", "/pods/s/s"},
		{KindWorkload, "s", "w", "/pods/s/w"},
		{KindStandalone, "c", "c", "/pods/c"},
		{KindSandbox, "vp", "x", "/pods/vp/x"},
	}
	for _, tc := range tests {
		if got := CgroupsPath(tc.kind, tc.sid, tc.id); got != tc.want {
			t.Errorf("CgroupsPath(%v, %q, %q) = %q, want %q", tc.kind, tc.sid, tc.id, got, tc.want)
		}
	}
	if got := PodCgroupPath("s"); got != "/pods/s" {
		t.Errorf("PodCgroupPath = %q", got)
	}
}

// FuzzClassify checks Classify's invariants on arbitrary ids and
// annotation values: it never panics, errors come with KindUnknown, and a
// success yields a valid kind and a pod id that is a safe path component
// and, for sandboxes and standalone containers, the container's own id
// unless a virtual pod says otherwise.
func FuzzClassify(f *testing.F) {
	f.Add("s1", "sandbox", "s1", "", true)
	f.Add("w1", "container", "s1", "", true)
	f.Add("w1", "container", "", "vp", true)
	f.Add("vp", "container", "s", "vp", true)
	f.Add("c", "", "", "", false)
	f.Add("c", "bogus", "", "", true)
	f.Add("../x", "sandbox", "", "", true)
	f.Fuzz(func(t *testing.T, id, ctype, sbid, vpod string, hasType bool) {
		ann := map[string]string{}
		if hasType {
			ann[AnnotationContainerType] = ctype
		}
		if sbid != "" {
			ann[AnnotationSandboxID] = sbid
		}
		if vpod != "" {
			ann[AnnotationVirtualPodID] = vpod
		}
		kind, sid, err := Classify(id, ann)
		if err != nil {
			if kind != KindUnknown || sid != "" {
				t.Fatalf("error %v with kind %v sid %q", err, kind, sid)
			}
			return
		}
		if ValidateID(sid) != nil || ValidateID(id) != nil {
			t.Fatalf("accepted unsafe ids: id %q sid %q", id, sid)
		}
		switch kind {
		case KindSandbox:
			if vpod != "" && sid != vpod || vpod == "" && sid != id {
				t.Fatalf("sandbox %q: sid %q (vpod %q)", id, sid, vpod)
			}
		case KindWorkload:
			if !hasType || ctype != "container" || id == vpod {
				t.Fatalf("workload from type %q (present %v), vpod %q", ctype, hasType, vpod)
			}
			if vpod != "" && sid != vpod || vpod == "" && sid != sbid {
				t.Fatalf("workload %q: sid %q (vpod %q, sandbox-id %q)", id, sid, vpod, sbid)
			}
		case KindStandalone:
			if hasType || sid != id {
				t.Fatalf("standalone with type present %v, sid %q", hasType, sid)
			}
		default:
			t.Fatalf("kind %v without error", kind)
		}
	})
}
