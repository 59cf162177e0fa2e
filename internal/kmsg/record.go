package kmsg

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Priority is a syslog severity, 0 (most severe) to 7.
type Priority uint8

// Kernel log levels (include/linux/kern_levels.h).
const (
	Emerg Priority = iota
	Alert
	Crit
	Err
	Warning
	Notice
	Info
	Debug
)

var priorityNames = [...]string{"Emerg", "Alert", "Crit", "Err", "Warning", "Notice", "Info", "Debug"}

// String returns the level's name as logged ("Emerg" ... "Debug").
func (p Priority) String() string {
	if int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return "Priority(" + strconv.Itoa(int(p)) + ")"
}

// Record is one /dev/kmsg record.
type Record struct {
	Priority Priority
	Facility uint8
	Seq      uint64
	// TimeSinceBootMicro is the record's timestamp in microseconds since
	// boot (CLOCK_MONOTONIC).
	TimeSinceBootMicro uint64
	// Flags is the fourth prefix field: "-" normally, "c" for a
	// continuation fragment.
	Flags string
	// Message is the record's text, with the kernel's \xNN escapes undone
	// and surrounding whitespace trimmed.
	Message string
	// Dict holds the record's " KEY=value" continuation lines (e.g.
	// SUBSYSTEM, DEVICE), nil when there are none.
	Dict map[string]string
}

// Parse parses one /dev/kmsg record:
//
//	<prio>,<seq>,<usec>,<flags>[,<more>...];<text>\n[ KEY=value\n]...
//
// prio is the syslog value: severity in the low 3 bits, facility above.
func Parse(b []byte) (Record, error) {
	semi := bytes.IndexByte(b, ';')
	if semi < 0 {
		return Record{}, fmt.Errorf("no ';' separator: %w", ErrInvalidRecord)
	}
	prefix := strings.Split(string(b[:semi]), ",")
	if len(prefix) < 4 {
		return Record{}, fmt.Errorf("%d prefix fields, want at least 4: %w", len(prefix), ErrInvalidRecord)
	}
	// 11 bits: 8 of facility, 3 of severity.
	syslog, err := strconv.ParseUint(prefix[0], 10, 11)
	if err != nil {
		return Record{}, fmt.Errorf("priority %q: %w", prefix[0], ErrInvalidRecord)
	}
	seq, err := strconv.ParseUint(prefix[1], 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("sequence %q: %w", prefix[1], ErrInvalidRecord)
	}
	usec, err := strconv.ParseUint(prefix[2], 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("timestamp %q: %w", prefix[2], ErrInvalidRecord)
	}
	r := Record{
		Priority:           Priority(syslog & 7),
		Facility:           uint8(syslog >> 3),
		Seq:                seq,
		TimeSinceBootMicro: usec,
		Flags:              prefix[3],
	}
	lines := strings.Split(string(b[semi+1:]), "\n")
	r.Message = strings.TrimSpace(oneLine(unescape(lines[0])))
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, " ") {
			continue
		}
		k, v, ok := strings.Cut(l[1:], "=")
		if !ok || k == "" {
			continue
		}
		if r.Dict == nil {
			r.Dict = make(map[string]string)
		}
		r.Dict[k] = oneLine(unescape(v))
	}
	return r, nil
}

// oneLine keeps a forwarded message on one log line: an escaped line break
// inside a record (\x0a) becomes a space.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", " ")
}

// unescape undoes the kernel's \xNN escaping of non-printable bytes (the
// kernel escapes '\' itself as \x5c, so this is exact).
func unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var out strings.Builder
	out.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				out.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}
