package runtime_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"abc", true},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"a.b_c-d", true},
		{"A1", true},
		{strings.Repeat("a", runtime.MaxIDLength), true},
		{strings.Repeat("a", runtime.MaxIDLength+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{"a..b", false},
		{"a/b", false},
		{"../etc", false},
		{"-a", false},
		{"a-", false},
		{"a b", false},
		{"a\x00b", false},
		{"ä", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.id), func(t *testing.T) {
			err := runtime.ValidateID(tc.id)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok && !errors.Is(err, runtime.ErrInvalidContainerID) {
				t.Fatalf("got %v, want ErrInvalidContainerID", err)
			}
		})
	}
}

func TestHResultOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		hr   prot.HResult
		ok   bool
	}{
		{"nil", nil, prot.HrOK, true},
		{"plain", errors.New("boom"), prot.HrFail, false},
		{"not exist", fmt.Errorf("runc state: %w", runtime.ErrContainerDoesNotExist), prot.HrVmcomputeSystemNotFound, true},
		{"exists", fmt.Errorf("x: %w", runtime.ErrContainerAlreadyExists), prot.HrVmcomputeSystemAlreadyExists, true},
		{"not running", fmt.Errorf("x: %w", runtime.ErrContainerNotRunning), prot.HrVmcomputeSystemAlreadyStopped, true},
		{"not stopped", fmt.Errorf("x: %w", runtime.ErrContainerNotStopped), prot.HrVmcomputeInvalidState, true},
		{"invalid id", fmt.Errorf("x: %w", runtime.ErrInvalidContainerID), prot.HrErrInvalidArg, true},
		{"no process", fmt.Errorf("x: %w", runtime.ErrProcessDoesNotExist), prot.HrErrNotFound, true},
		{"prot error wins", prot.NewError(prot.HrVmcomputeTimeout, runtime.ErrContainerDoesNotExist), prot.HrVmcomputeTimeout, true},
		{"wrapped prot error", fmt.Errorf("ctx: %w", prot.Errorf(prot.HrVmcomputeInvalidJSON, "bad")), prot.HrVmcomputeInvalidJSON, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hr, ok := runtime.HResultOf(tc.err)
			if hr != tc.hr || ok != tc.ok {
				t.Fatalf("HResultOf(%v) = %v, %v; want %v, %v", tc.err, hr, ok, tc.hr, tc.ok)
			}
		})
	}
}
