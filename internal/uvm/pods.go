package uvm

import (
	"sync"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// pod is a sandbox and the workloads that joined it.
type pod struct {
	id      string
	root    string
	members map[string]bool
}

// podTable tracks pods by sandbox id.
type podTable struct {
	mu   sync.Mutex
	pods map[string]*pod
}

func newPodTable() *podTable { return &podTable{pods: make(map[string]*pod)} }

// create records a new pod whose first member is its sandbox.
func (t *podTable) create(id, root string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.pods[id]; ok {
		return prot.Errorf(prot.HrFail, "pod %s already exists", id)
	}
	t.pods[id] = &pod{id: id, root: root, members: map[string]bool{id: true}}
	return nil
}

// join adds container id to pod sid and returns the pod root.
func (t *podTable) join(sid, id string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[sid]
	if !ok {
		return "", prot.Errorf(prot.HrFail, "pod %s does not exist (workload %s)", sid, id)
	}
	if p.members[id] {
		return "", prot.Errorf(prot.HrFail, "container %s is already a member of pod %s", id, sid)
	}
	p.members[id] = true
	return p.root, nil
}

// leave removes id from pod sid; the sandbox leaving removes the pod.
func (t *podTable) leave(sid, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[sid]
	if !ok {
		return
	}
	delete(p.members, id)
	if id == sid {
		delete(t.pods, sid)
	}
}
