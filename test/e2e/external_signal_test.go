package e2e

import (
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestSignalExternalProcess signals processes the host started in the
// utility VM itself (the null container id). The reference guest answers
// 0xC037010E there; opengcs delivers the signal like it does for container
// processes: SIGTERM ends a shell trap with its own exit code, signal 0 is
// SIGKILL (reported as -1), an unknown pid is 0x80070490.
func TestSignalExternalProcess(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		script string
		signal int32
		code   uint32
	}{
		{"SIGTERM caught by the process", `trap "exit 7" TERM; echo ready; while :; do sleep 0.05; done`, 15, 7},
		{"0 means SIGKILL", `echo ready; exec sleep 1000`, 0, 0xFFFFFFFF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, false, true, false)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			params := &prot.ProcessParameters{CommandArgs: []string{"sh", "-c", tc.script}, Environment: map[string]string{"PATH": "/bin:/usr/bin"}, CreateStdOutPipe: true}
			pid, err := e.c.ExecuteProcess(ctxT(t, 30*time.Second), prot.NullContainerID, params, st.Ports)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Accept(ctxT(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
			// The process is running (and has set its trap) once it says so.
			buf := make([]byte, len("ready\n"))
			if _, err := st.Conn(hostclient.StdOut).Read(buf); err != nil || string(buf) != "ready\n" {
				t.Fatalf("read %q, %v", buf, err)
			}
			if err := e.c.SignalProcess(ctxT(t, 30*time.Second), prot.NullContainerID, pid, tc.signal); err != nil {
				t.Fatalf("SignalProcess on an external process: %v", err)
			}
			code, err := e.c.WaitForProcess(ctxT(t, 30*time.Second), prot.NullContainerID, pid, prot.InfiniteWaitTimeout)
			if err != nil || code != tc.code {
				t.Fatalf("exit %#x, %v; want %#x", code, err, tc.code)
			}
		})
	}
	err := e.c.SignalProcess(ctxT(t, 30*time.Second), prot.NullContainerID, 999999, 9)
	if hostclient.ResultOf(err) != prot.HrErrNotFound {
		t.Fatalf("signal to an unknown external pid: %v, want %s", err, prot.HrErrNotFound)
	}
}
