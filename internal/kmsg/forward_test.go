package kmsg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// scripted hands out one item per Read, like /dev/kmsg does: a record or
// an error. It models the device's read contract for the filtering and
// error-handling table; TestReadDevKmsg reads the real device.
type scripted struct{ items []any }

func (s *scripted) Read(b []byte) (int, error) {
	if len(s.items) == 0 {
		return 0, io.EOF
	}
	it := s.items[0]
	s.items = s.items[1:]
	if err, ok := it.(error); ok {
		return 0, err
	}
	return copy(b, it.(string)), nil
}

func TestForwarderRun(t *testing.T) {
	records := []any{
		"0,1,10,-;emergency\n",
		"3,2,20,-;an error\n",
		"12,3,30,-;user warning\n",
		syscall.EPIPE,
		"5,4,40,-;a notice\n",
		"not a record",
		"7,5,50,-;debug chatter\n",
	}
	for _, tc := range []struct {
		level    Priority
		messages []string
	}{
		{Emerg, []string{"emergency"}},
		{Err, []string{"emergency", "an error"}},
		{Warning, []string{"emergency", "an error", "user warning"}},
		{Debug, []string{"emergency", "an error", "user warning", "a notice", "debug chatter"}},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			logger, hook := logtest.NewNullLogger()
			logger.SetLevel(logrus.TraceLevel)
			f := &Forwarder{Level: tc.level, Log: logrus.NewEntry(logger)}
			err := f.Run(context.Background(), &scripted{items: append([]any(nil), records...)})
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Run = %v, want EOF at the end", err)
			}
			var got []string
			var warned, parseErr bool
			for _, e := range hook.AllEntries() {
				switch {
				case e.Message == "kmsg read":
					if e.Level != logrus.InfoLevel {
						t.Errorf("record logged at %v", e.Level)
					}
					got = append(got, e.Data["message"].(string))
				case e.Level == logrus.WarnLevel:
					warned = true
				case e.Level == logrus.ErrorLevel && e.Data["line"] == "not a record":
					parseErr = true
				}
			}
			if len(got) != len(tc.messages) {
				t.Fatalf("forwarded %q, want %q", got, tc.messages)
			}
			for i := range got {
				if got[i] != tc.messages[i] {
					t.Fatalf("forwarded %q, want %q", got, tc.messages)
				}
			}
			if !warned || !parseErr {
				t.Errorf("EPIPE warned=%v, parse error logged=%v", warned, parseErr)
			}
		})
	}
}

// TestReadDevKmsg forwards the machine's real kernel log and writes one
// tagged warning line to it, which must come back with its fields.
func TestReadDevKmsg(t *testing.T) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	tag := "opengcs-kmsg-test-" + hex.EncodeToString(b)

	logger, hook := logtest.NewNullLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &Forwarder{Level: Warning, Log: logrus.NewEntry(logger)}
	done := make(chan error, 1)
	go func() { done <- f.ReadFile(ctx, DefaultPath) }()

	w, err := os.OpenFile(DefaultPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("<4>" + tag + "\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()

	deadline := time.After(30 * time.Second)
	var found *logrus.Entry
	for found == nil {
		for _, e := range hook.AllEntries() {
			if e.Data["message"] == tag {
				found = e
			}
		}
		if found != nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("forwarder stopped: %v", err)
		case <-deadline:
			t.Fatal("tagged record not forwarded")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if found.Data["priority"] != "Warning" || found.Data["facility"] != uint8(1) || found.Data["flags"] != "-" {
		t.Fatalf("fields %v", found.Data)
	}
	if seq, _ := found.Data["seq"].(uint64); seq == 0 {
		t.Errorf("seq %v", found.Data["seq"])
	}
	for _, e := range hook.AllEntries() {
		if e.Message == "kmsg read" {
			if p, _ := e.Data["priority"].(string); p == "Notice" || p == "Info" || p == "Debug" {
				t.Fatalf("record above the level forwarded: %v", e.Data)
			}
		}
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadFile after cancel = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ReadFile did not stop after cancel")
	}
}

func TestReadFileMissing(t *testing.T) {
	f := &Forwarder{Level: Warning}
	if err := f.ReadFile(context.Background(), t.TempDir()+"/no-kmsg"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadFile of a missing device = %v", err)
	}
}
