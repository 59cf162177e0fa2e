package logging

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestJSONEntriesPassCheck(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Level: "debug", Format: FormatJSON, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	e := logrus.NewEntry(l)
	e.Info("plain")
	e.WithError(errors.New("boom")).Warn("with an error")
	// Fields named like the standard ones must not replace them.
	e.WithFields(logrus.Fields{"time": "yesterday", "level": "loud", "msg": 3}).Debug("clashing fields")
	// A value encoding/json refuses would make logrus print plain text.
	e.WithField("ratio", math.NaN()).Error("unencodable field")
	e.WithField("ch", make(chan int)).Error("unencodable field")
	e.Trace("below the level")
	n, bad, err := Check(&buf)
	if err != nil || n != 5 || len(bad) != 0 {
		t.Fatalf("Check: %d lines, bad %q, err %v\n%s", n, bad, err, buf.String())
	}
}

func TestNewRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
	}{
		{"level", Config{Level: "loud", Format: FormatText}},
		{"format", Config{Level: "info", Format: "xml"}},
		{"file", Config{Level: "info", Format: FormatJSON, File: filepath.Join(t.TempDir(), "no", "such", "dir")}},
	} {
		if _, err := New(tc.c); err == nil {
			t.Errorf("%s: New(%+v) succeeded", tc.name, tc.c)
		}
	}
}

func TestFormatFromArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, FormatText},
		{[]string{"-v4", "-log-format", "json"}, FormatJSON},
		{[]string{"--log-format=json", "-loglevel", "loud"}, FormatJSON},
		{[]string{"-log-format", "xml"}, FormatText},
		{[]string{"-log-format"}, FormatText},
		{[]string{"-log-format", "json", "-log-format", "text"}, FormatText},
		{[]string{"--", "-log-format", "json"}, FormatText},
	} {
		if got := FormatFromArgs(tc.args); got != tc.want {
			t.Errorf("FormatFromArgs(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, line string
	}{
		{"text", `time="2026-01-01T00:00:00Z" level=info msg=hello`},
		{"panic trace", `panic: runtime error: index out of range [3] with length 3`},
		{"blank", ``},
		{"array", `[1,2]`},
		{"no time", `{"level":"info","msg":"m"}`},
		{"no level", `{"time":"2026-01-01T00:00:00Z","msg":"m"}`},
		{"no msg", `{"time":"2026-01-01T00:00:00Z","level":"info"}`},
		{"bad time", `{"time":"yesterday","level":"info","msg":"m"}`},
		{"bad level", `{"time":"2026-01-01T00:00:00Z","level":"loud","msg":"m"}`},
		{"msg not a string", `{"time":"2026-01-01T00:00:00Z","level":"info","msg":3}`},
		{"two objects", `{"time":"2026-01-01T00:00:00Z","level":"info","msg":"a"} {"time":"2026-01-01T00:00:00Z","level":"info","msg":"b"}`},
	} {
		if err := CheckLine([]byte(tc.line)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("%s: CheckLine(%q) = %v, want ErrNotJSON", tc.name, tc.line, err)
		}
	}
	good := `{"time":"2026-01-01T00:00:00.123456789Z","level":"warning","msg":"m","cid":"c"}`
	if err := CheckLine([]byte(good)); err != nil {
		t.Errorf("CheckLine(%q) = %v", good, err)
	}
	n, bad, err := Check(strings.NewReader(good + "\nnot json\n" + good + "\n"))
	if err != nil || n != 3 || len(bad) != 1 || !strings.HasPrefix(bad[0], "line 2:") {
		t.Errorf("Check: %d lines, bad %q, err %v", n, bad, err)
	}
}

func TestEarlyFollowsArgs(t *testing.T) {
	var buf bytes.Buffer
	Early([]string{"-log-format", "json", "-bogus"}, &buf).Log(logrus.FatalLevel, "bad command line")
	if err := CheckLine(bytes.TrimSpace(buf.Bytes())); err != nil {
		t.Errorf("json early line %q: %v", buf.String(), err)
	}
	buf.Reset()
	Early(nil, &buf).Error("bad command line")
	if CheckLine(bytes.TrimSpace(buf.Bytes())) == nil {
		t.Errorf("text early line %q is JSON", buf.String())
	}
}

func TestDiscard(t *testing.T) {
	Or(nil).WithField("k", "v").Error("goes nowhere")
	e := Discard()
	if Or(e) != e {
		t.Error("Or replaced a non-nil entry")
	}
}
