package runc_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/runtime"
)

// TestDeleteForceExited covers the plain-delete path of a forced delete
// once the init has been reaped: what is left of the container goes away
// all the same, including a background process that outlived the init of
// a container sharing its pid namespace.
func TestDeleteForceExited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pidNS bool
	}{
		{"own pid ns", true},
		{"shared pid ns, leftover child", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPipes(t)
			spec := testutil.Spec("/bin/sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
			if !tc.pidNS {
				spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
					return n.Type == specs.PIDNamespace
				})
			}
			c := create(t, spec, p.child)
			p.closeChild()
			if err := c.Start(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(readAll(t, p.stdout))
			wait(t, c, 0)
			// Without a pid namespace of its own the container's pids are
			// this process's.
			child, err := strconv.Atoi(out)
			if err != nil {
				t.Fatalf("child pid %q: %v", out, err)
			}
			if !tc.pidNS && !processExists(child) {
				t.Fatalf("background child %d is already gone; the test proves nothing", child)
			}
			if err := c.Delete(ctxT(t), true); err != nil {
				t.Fatal(err)
			}
			if !tc.pidNS {
				eventually(t, "leftover child killed", func() bool { return !processExists(child) })
			}
			if _, err := rt.Get(c.ID()); !errors.Is(err, runtime.ErrContainerDoesNotExist) {
				t.Fatalf("Get after delete: %v", err)
			}
			if _, err := os.Stat(filepath.Join(stateDir, c.ID())); !os.IsNotExist(err) {
				t.Fatalf("state dir still there: %v", err)
			}
			if _, err := runcCLI(ctxT(t), "state", c.ID()); err == nil {
				t.Fatal("runc still knows the container")
			}
			// A second forced delete of the now unknown container is no
			// error, as with runc delete --force.
			if err := c.Delete(ctxT(t), true); err != nil {
				t.Fatalf("second delete: %v", err)
			}
		})
	}
}
