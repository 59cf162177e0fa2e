package uvm

import (
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/oci"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// pod is a sandbox and the workloads that joined it.
type pod struct {
	id      string
	root    string
	members map[string]bool
	// closed is set when the sandbox has left: no one may join any more,
	// and the pod goes away with its last member.
	closed bool
}

// podCgroups creates and removes the pod cgroups /pods/<sid>; both funcs
// may be nil (then runc creates the parent implicitly and nobody removes
// it).
type podCgroups struct {
	create func(path string, res *specs.LinuxResources) error
	remove func(path string) error
}

// podTable tracks pods by sandbox id.
type podTable struct {
	mu      sync.Mutex
	pods    map[string]*pod
	cgroups podCgroups
	log     *logrus.Entry
}

func newPodTable(cg podCgroups, log *logrus.Entry) *podTable {
	return &podTable{pods: make(map[string]*pod), cgroups: cg, log: log}
}

// create records a new pod whose first member is its sandbox, and creates the
// pod cgroup with the sandbox spec's resources (docs/lifecycle.md, "Create,
// step by step": Pod bookkeeping).
func (t *podTable) create(id, root string, res *specs.LinuxResources) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.pods[id]; ok {
		if p.closed {
			return prot.Errorf(prot.HrFail, "pod %s is still being torn down (%d members left)", id, len(p.members))
		}
		return prot.Errorf(prot.HrFail, "pod %s already exists", id)
	}
	if t.cgroups.create != nil {
		if res == nil {
			res = &specs.LinuxResources{}
		}
		if err := t.cgroups.create(oci.PodCgroupPath(id), res); err != nil {
			return prot.Errorf(prot.HrFail, "pod %s: create pod cgroup: %v", id, err)
		}
	}
	t.pods[id] = &pod{id: id, root: root, members: map[string]bool{id: true}}
	return nil
}

// join adds container id to pod sid and returns the pod root.
func (t *podTable) join(sid, id string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[sid]
	if !ok || p.closed {
		return "", prot.Errorf(prot.HrFail, "pod %s does not exist (workload %s)", sid, id)
	}
	if p.members[id] {
		return "", prot.Errorf(prot.HrFail, "container %s is already a member of pod %s", id, sid)
	}
	p.members[id] = true
	return p.root, nil
}

// leave removes id from pod sid. The sandbox leaving closes the pod; a
// closed pod without members is forgotten and its cgroup removed (every
// member's own cgroup is gone by then).
func (t *podTable) leave(sid, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[sid]
	if !ok {
		return
	}
	delete(p.members, id)
	if id == sid {
		p.closed = true
	}
	if !p.closed || len(p.members) > 0 {
		return
	}
	delete(t.pods, sid)
	if t.cgroups.remove != nil {
		if err := t.cgroups.remove(oci.PodCgroupPath(sid)); err != nil {
			t.log.WithError(err).WithField("sandbox", sid).Warn("remove pod cgroup")
		}
	}
}
