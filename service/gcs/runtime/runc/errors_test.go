package runc

import (
	"errors"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/runtime"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		msg  string
		want error
	}{
		{"container does not exist", runtime.ErrContainerDoesNotExist},
		{`container "x" does not exist`, runtime.ErrContainerDoesNotExist},
		{"container with given ID already exists", runtime.ErrContainerAlreadyExists},
		{"container with id exists: x", runtime.ErrContainerAlreadyExists},
		{"invalid container ID format: a/b", runtime.ErrInvalidContainerID},
		{"invalid id format", runtime.ErrInvalidContainerID},
		{"container not running", runtime.ErrContainerNotRunning},
		{"container with id x is not running", runtime.ErrContainerNotRunning},
		{"container init still running", runtime.ErrContainerNotStopped},
		{"cannot delete container x that is not stopped: running", runtime.ErrContainerNotStopped},
		{"cannot start a container that has stopped", nil},
		{`exec: "/nope": stat /nope: no such file or directory`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			if got := classify(tc.msg); got != tc.want {
				t.Fatalf("classify(%q) = %v, want %v", tc.msg, got, tc.want)
			}
		})
	}
}

func TestLastError(t *testing.T) {
	tests := []struct {
		name string
		log  string
		want string
	}{
		{"empty", "", ""},
		{"info only", `{"level":"info","msg":"hello"}` + "\n", ""},
		{"last error wins", `{"level":"error","msg":"first"}` + "\n" + `{"level":"warning","msg":"w"}` + "\n" + `{"level":"error","msg":"second"}` + "\n", "second"},
		{"fatal with error field", `{"level":"fatal","msg":"boom","error":"why"}` + "\n", "boom: why"},
		{"garbage tail", `{"level":"error","msg":"kept"}` + "\nnot json\n", "kept"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastError([]byte(tc.log)); got != tc.want {
				t.Fatalf("lastError = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorWrapsKindAndCause(t *testing.T) {
	cause := errors.New("exit status 1")
	err := newError("kill", "c1", []byte(`{"level":"error","msg":"container not running"}`), []byte("ignored"), cause)
	if !errors.Is(err, runtime.ErrContainerNotRunning) || !errors.Is(err, cause) {
		t.Fatalf("%v does not wrap both the sentinel and the cause", err)
	}
	if got := err.Error(); got != "runc kill c1: container not running" {
		t.Fatalf("message %q", got)
	}
	if got := newError("state", "", nil, []byte(" from stderr \n"), cause).Message; got != "from stderr" {
		t.Fatalf("stderr fallback %q", got)
	}
}
