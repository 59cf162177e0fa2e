package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"
)

// maxLine bounds one log line read by Check.
const maxLine = 4 << 20

// Entry is the part of a log line the host reads into typed fields; the
// other fields it keeps as they are.
type Entry struct {
	Time    time.Time    `json:"time"`
	Level   logrus.Level `json:"level"`
	Message string       `json:"msg"`
}

// CheckLine reports whether line is one JSON object with a "time" in RFC
// 3339, a "level" logrus knows and a string "msg", and nothing after it.
func CheckLine(line []byte) error {
	var fields map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&fields); err != nil {
		return fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	if d.More() {
		return fmt.Errorf("%w: more than one value on the line", ErrNotJSON)
	}
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := fields[k]; !ok {
			return fmt.Errorf("%w: no %q field", ErrNotJSON, k)
		}
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	return nil
}

// Check reads a log stream line by line and returns how many lines it
// had and the ones CheckLine refuses, each with its reason. Blank lines
// count as bad: the host's decoder would skip them, but the gcs never
// writes one. err is only a read error.
func Check(r io.Reader) (lines int, bad []string, err error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), maxLine)
	for s.Scan() {
		lines++
		if err := CheckLine(s.Bytes()); err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v: %q", lines, err, truncate(s.Text(), 300)))
		}
	}
	return lines, bad, s.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
