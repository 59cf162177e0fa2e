package vm

import (
	"slices"
	"testing"
)

func TestConsoleNonJSON(t *testing.T) {
	console := "opengcs-init: cgroup v2=true controllers=cpu\r\n" +
		"[    1.234567] virtio_net virtio0: something\r\n" +
		`{"level":"info","msg":"GCS started","time":"2026-01-01T00:00:00.1Z"}` + "\r\n" +
		"\r\n" +
		"time=\"2026-01-01T00:00:00Z\" level=info msg=text\r\n" +
		"panic: boom\r\n" +
		`{"level":"info","msg":"no time"}` + "\n" +
		`{"level":"info","msg":"Span","time":"2026-01-01T00:00:00.1Z"}[   37.958017] virtio_scsi: SCSI device 0 0 0 5 not found` + "\r\n" +
		`{"level":"info","msg":"cut"[   37.958017] virtio_scsi: x` + "\r\n"
	got := ConsoleNonJSON(console)
	want := []string{`time="2026-01-01T00:00:00Z" level=info msg=text`, "panic: boom", `{"level":"info","msg":"no time"}`,
		`{"level":"info","msg":"cut"[   37.958017] virtio_scsi: x`}
	if !slices.Equal(got, want) {
		t.Fatalf("ConsoleNonJSON = %q, want %q", got, want)
	}
}
