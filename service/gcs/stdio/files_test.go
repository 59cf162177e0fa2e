package stdio

import (
	"os/exec"
	"testing"
)

// A non-pty external process gets the sockets themselves as stdio.
func TestConnectionSetFiles(t *testing.T) {
	h := newTestHost(t)
	set, hs := h.connect(AllStreams())
	fs, err := set.Files()
	if err != nil {
		t.Fatalf("Files: %v", err)
	}
	cmd := exec.Command("sh", "-c", "tr a-z A-Z; echo done >&2")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = fs.In, fs.Out, fs.Err
	startCmd(t, cmd)
	// The child holds the sockets now; the GCS keeps nothing open.
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	out, errs := drain(hs.Out), drain(hs.Err)
	if _, err := hs.In.Write([]byte("hello sockets\n")); err != nil {
		t.Fatal(err)
	}
	if err := hs.In.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(t, cmd); err != nil {
		t.Fatalf("sh: %v", err)
	}
	if got := recv(t, out, "stdout"); string(got.data) != "HELLO SOCKETS\n" {
		t.Fatalf("stdout = %q (%v)", got.data, got.err)
	}
	if got := recv(t, errs, "stderr"); string(got.data) != "done\n" {
		t.Fatalf("stderr = %q", got.data)
	}
}
