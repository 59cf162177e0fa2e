//go:build rego

package policy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/Microsoft/hcsshim/pkg/securitypolicy"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// fakeSNP stands for the SNP guest device and its attestation report.
type fakeSNP struct {
	present  bool
	hostData []byte
}

func (f fakeSNP) Present() (bool, error)    { return f.present, nil }
func (f fakeSNP) HostData() ([]byte, error) { return f.hostData, nil }

// regoPolicy marshals a policy built with hcsshim's Go API to base64 Rego.
func regoPolicy(t *testing.T, allowAll bool) string {
	t.Helper()
	text, err := securitypolicy.MarshalPolicy("rego", allowAll, nil, nil, nil, true, true, true, true, false, true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString([]byte(text))
}

func hresultOf(err error) prot.HResult {
	var pe *prot.Error
	if errors.As(err, &pe) {
		return pe.Result
	}
	return 0
}

func TestHostData(t *testing.T) {
	ctx := context.Background()
	enc := regoPolicy(t, true)
	raw, _ := base64.StdEncoding.DecodeString(enc)
	digest := sha256.Sum256(raw)
	other := sha256.Sum256([]byte("another policy"))
	for _, tc := range []struct {
		name    string
		snp     SNP
		wantErr error
	}{
		{"no SNP hardware", nil, nil},
		{"device absent", fakeSNP{present: false, hostData: other[:]}, nil},
		{"HOST_DATA matches", fakeSNP{present: true, hostData: digest[:]}, nil},
		{"HOST_DATA differs", fakeSNP{present: true, hostData: other[:]}, ErrHostDataMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(Config{Stance: StanceDeny, SNP: tc.snp})
			if err != nil {
				t.Fatal(err)
			}
			err = e.SetPolicy(ctx, prot.ConfidentialOptions{EnforcerType: EnforcerRego, EncodedSecurityPolicy: enc})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetPolicy: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if hresultOf(err) != prot.HrFail {
					t.Errorf("HRESULT %v, want E_FAIL", hresultOf(err))
				}
				// Refused: still closed.
				if e.DumpStacks(ctx) == nil || e.Confidential() {
					t.Error("a refused policy opened the door")
				}
				return
			}
			if err := e.DumpStacks(ctx); err != nil {
				t.Errorf("allow-all policy refused DumpStacks: %v", err)
			}
		})
	}
}

func TestSetOnce(t *testing.T) {
	ctx := context.Background()
	e := OpenDoor()
	if e.Confidential() {
		t.Fatal("open door is not confidential")
	}
	if err := e.SetPolicy(ctx, prot.ConfidentialOptions{}); err != nil {
		t.Fatalf("open-door policy: %v", err)
	}
	err := e.SetPolicy(ctx, prot.ConfidentialOptions{EnforcerType: EnforcerRego, EncodedSecurityPolicy: regoPolicy(t, true)})
	if !errors.Is(err, ErrPolicyAlreadySet) {
		t.Fatalf("second policy: %v, want %v", err, ErrPolicyAlreadySet)
	}
}

func TestStance(t *testing.T) {
	ctx := context.Background()
	var logging []bool
	e, err := New(Config{Stance: StanceDeny, RuntimeLogging: func(ok bool) { logging = append(logging, ok) }})
	if err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{
		"dump stacks":    func() error { return e.DumpStacks(ctx) },
		"get properties": func() error { return e.GetProperties(ctx) },
		"shutdown":       func() error { return e.Shutdown(ctx, "c") },
		"signal":         func() error { return e.Signal(ctx, "c", 15, true, []string{"sh"}) },
		"host network":   func() error { return e.HostNetwork(ctx) },
	} {
		err := check()
		if err == nil || !strings.Contains(err.Error(), "denied by policy") {
			t.Errorf("%s under the deny stance: %v", name, err)
		}
	}
	if _, err := New(Config{Stance: "maybe"}); !errors.Is(err, ErrBadStance) {
		t.Errorf("bad stance: %v", err)
	}
	if err := e.SetPolicy(ctx, prot.ConfidentialOptions{EnforcerType: EnforcerRego, EncodedSecurityPolicy: regoPolicy(t, true)}); err != nil {
		t.Fatal(err)
	}
	if err := e.DumpStacks(ctx); err != nil {
		t.Errorf("after an allow-all policy: %v", err)
	}
	if len(logging) != 2 || logging[0] || !logging[1] {
		t.Errorf("runtime logging decisions %v, want [false true]", logging)
	}
}
