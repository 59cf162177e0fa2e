package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestFailedCreateRollsBack makes runc create fail and checks that the
// reason reaches the host and nothing is left: no bundle, no cgroup, no
// runc state, and the id can be used again.
func TestFailedCreateRollsBack(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: scratchOf(id)}
	if err := e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		t.Fatal(err)
	}
	s := e.spec("/no/such/binary")
	s.Root.Path = rootfsOf(id)
	err := e.c.CreateContainer(ctxT(t, 60e9), id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), s))
	if err == nil {
		t.Fatal("create of a container whose process does not exist succeeded")
	}
	if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), "/no/such/binary") {
		t.Fatalf("create error %v does not carry runc's reason", err)
	}
	cfg, _ := e.g.Root(bundleOf(id) + "/config.json")
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("config.json left behind: %v", err)
	}
	state, _ := e.g.Root("/run/runc/" + id)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("runc state left behind: %v", err)
	}
	if _, err := os.Stat(e.cgroupDir("memory", "/pods/"+id)); !os.IsNotExist(err) {
		t.Fatalf("cgroup left behind: %v", err)
	}
	// The id is free again and the layers still serve a good container.
	if _, err := e.c.WaitForProcess(ctxT(t, 30e9), id, 1, 0); hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		t.Fatalf("failed container still known: %v", err)
	}
	good := e.spec("sh", "-c", "echo second try")
	good.Root.Path = rootfsOf(id)
	if err := e.c.CreateContainer(ctxT(t, 60e9), id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), good)); err != nil {
		t.Fatalf("create after rollback: %v", err)
	}
	t.Cleanup(func() {
		e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
		e.c.DeleteContainerState(ctxT(t, 30e9), id)
	})
	p := e.exec(id, nil, false, true, false)
	if out := readAll(t, p.stdio, hostclient.StdOut); out != "second try\n" {
		t.Fatalf("stdout %q", out)
	}
	e.wait(id, p.pid)
	e.notification(id)
}

// TestUntrustedIDsAndPaths checks that ids and paths from the host cannot
// name anything outside the gcs's own directories.
func TestUntrustedIDsAndPaths(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, id, bundle, scratch string
		want                      prot.HResult
	}{
		{"id-dotdot", "../../etc", "/run/gcs/c/x", "", prot.HrErrInvalidArg},
		{"id-slash", "a/b", "/run/gcs/c/a", "", prot.HrErrInvalidArg},
		{"id-empty", "", "/run/gcs/c/x", "", prot.HrErrInvalidArg},
		{"id-too-long", strings.Repeat("a", 200), "/run/gcs/c/x", "", prot.HrErrInvalidArg},
		{"bundle-outside", "c1", "/etc/evil", "", prot.HrFail},
		{"bundle-escape", "c2", "/run/gcs/c/../../../etc", "", prot.HrFail},
		{"bundle-root", "c3", "/run/gcs/c", "", prot.HrFail},
		{"scratch-escape", "c4", "/run/gcs/c/c4", "/run/gcs/c/../../tmp", prot.HrFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.spec("true")
			s.Root.Path = "/run/gcs/c/x/rootfs"
			err := e.c.CreateContainer(ctxT(t, 30e9), tc.id, hostclient.ContainerSettings(tc.bundle, tc.scratch, s))
			if hostclient.ResultOf(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	for _, p := range []string{"/etc/evil", "/tmp/evil"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s exists", p)
		}
	}
	// CombinedLayers with escaping paths is refused too.
	err := e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers,
		&prot.LCOWCombinedLayers{ContainerRootPath: "/run/gcs/c/../../../tmp/x/rootfs", Layers: []prot.Layer{{Path: e.layer}}})
	if err == nil {
		t.Fatal("escaping CombinedLayers accepted")
	}
	// Unknown resource types and request types are named in the error.
	err = e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeAdd, "HvSocket", map[string]string{})
	if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), "HvSocket") {
		t.Fatalf("unknown resource type: %v", err)
	}
	err = e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeUpdate, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{})
	if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), "Update") {
		t.Fatalf("unsupported request type: %v", err)
	}
	err = e.c.CallRaw(ctxT(t, 30e9), prot.ComputeSystemModifySettingsV1, []byte(`{"ContainerId":"00000000-0000-0000-0000-000000000000","Request":{"ResourceType":"MappedVirtualDisk","Settings":{"Lun":"two"}}}`), nil)
	if hostclient.ResultOf(err) != prot.HrVmcomputeInvalidJSON {
		t.Fatalf("bad settings: %v", err)
	}
	if !e.g.Alive() {
		t.Fatal("gcs died")
	}
}

// TestShutdownUVMPowersOff asks the gcs to power the VM off. It runs in its
// own PID namespace, so reboot(2) ends only that namespace. No response is
// sent; the bridge connection ends and the gcs exits.
func TestShutdownUVMPowersOff(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c := connect(t, g)
	errc := make(chan error, 1)
	go func() { errc <- c.Shutdown(ctxT(t, 60*time.Second), prot.NullContainerID, false) }()
	select {
	case <-g.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("gcs still running after the VM shutdown request")
	}
	if err := <-errc; err == nil {
		t.Fatal("a response was sent to the VM shutdown request")
	}
}

// TestDeleteWithoutStartAndWhileRunning deletes a container that was never
// started and one that is still running: both go away completely and
// nothing of theirs keeps running.
func TestDeleteWithoutStartAndWhileRunning(t *testing.T) {
	e := newEnv(t)
	never := newID(t)
	e.create(never, e.spec("sleep", "1000"))
	if err := e.c.DeleteContainerState(ctxT(t, 30e9), never); err != nil {
		t.Fatalf("delete of a created container: %v", err)
	}
	running := newID(t)
	e.create(running, e.spec("sleep", "1000"))
	p := e.exec(running, nil, false, false, false)
	if err := e.c.DeleteContainerState(ctxT(t, 30e9), running); err != nil {
		t.Fatalf("delete of a running container: %v", err)
	}
	for _, id := range []string{never, running} {
		if _, err := e.c.WaitForProcess(ctxT(t, 30e9), id, p.pid, 0); hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
			t.Fatalf("%s still known: %v", id, err)
		}
		if _, err := os.Stat(e.cgroupDir("pids", "/pods/"+id)); !os.IsNotExist(err) {
			t.Fatalf("cgroup of %s left behind: %v", id, err)
		}
	}
	// No notification is sent for a container deleted before any wait.
	select {
	case n := <-e.c.Notifications():
		t.Fatalf("unexpected notification %+v", n)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestCombinedLayersTwiceRefused: a second CombinedLayers Add on a root
// that is already mounted is refused instead of stacking a second overlay.
func TestCombinedLayersTwiceRefused(t *testing.T) {
	e := newEnv(t)
	id := newID(t)
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id), Layers: []prot.Layer{{Path: e.layer}}, ScratchPath: scratchOf(id)}
	if err := e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
	})
	err := e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers)
	if hostclient.ResultOf(err) != prot.HrFail || !strings.Contains(err.Error(), "already mounted") {
		t.Fatalf("second Add: %v", err)
	}
	if err := e.c.Modify(ctxT(t, 30e9), prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)}); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.g.Root(rootfsOf(id)); p != "" {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("rootfs left after Remove: %v", err)
		}
	}
}
