package uvm

import (
	"context"
	"testing"
)

func exitedProcess(pid, code uint32) *process {
	p := newProcess(pid, nil, nil)
	p.finish(code)
	return p
}

// TestProcessTableRetention: after its first answered wait a process is
// kept as its exit code only, and only the newest keep of those stay.
func TestProcessTableRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep int
		// pids exit (with code pid+100) and are waited for, in order.
		pids []uint32
		// reuse adds a running process under this pid after the waits.
		reuse uint32
		// then more pids are waited for.
		more []uint32
		want map[uint32]bool // pid -> still known
	}{
		{"under the bound", 3, []uint32{1, 2}, 0, nil, map[uint32]bool{1: true, 2: true}},
		{"oldest goes first", 2, []uint32{1, 2, 3, 4}, 0, nil, map[uint32]bool{1: false, 2: false, 3: true, 4: true}},
		{"no retention", 0, []uint32{1, 2}, 0, nil, map[uint32]bool{1: false, 2: false}},
		{"a reused pid is not evicted with the old record", 2, []uint32{1, 2}, 1, []uint32{3, 4}, map[uint32]bool{1: true, 2: false, 3: true, 4: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := newProcessTable(tc.keep)
			wait := func(pid uint32) {
				p := exitedProcess(pid, pid+100)
				tab.add(p)
				for i := 0; i < 2; i++ { // a second wait retires nothing more
					q, ok := tab.get(pid)
					if !ok {
						t.Fatalf("pid %d unknown before its wait", pid)
					}
					code, err := waitAndRetire(context.Background(), tab, q, 0)
					if err != nil || code != pid+100 {
						t.Fatalf("wait %d: %d, %v", pid, code, err)
					}
					if tc.keep == 0 {
						break
					}
				}
			}
			for _, pid := range tc.pids {
				wait(pid)
			}
			var reused *process
			if tc.reuse != 0 {
				reused = newProcess(tc.reuse, nil, nil)
				tab.add(reused)
			}
			for _, pid := range tc.more {
				wait(pid)
			}
			for pid, known := range tc.want {
				p, ok := tab.get(pid)
				if ok != known {
					t.Fatalf("pid %d known %v, want %v", pid, ok, known)
				}
				if !ok {
					continue
				}
				if p == reused {
					if p.exited() {
						t.Fatalf("reused pid %d reports an exit", pid)
					}
					continue
				}
				if !p.retained || p.code != pid+100 || !p.exited() {
					t.Fatalf("pid %d: retained %v code %d", pid, p.retained, p.code)
				}
			}
			if n := len(tab.all()); n > tc.keep+1 {
				t.Fatalf("%d entries with keep %d", n, tc.keep)
			}
		})
	}
}
