package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// parseUint parses a cgroup counter; "max" (unlimited) is math.MaxUint64.
func parseUint(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative values (e.g. a v1 limit of -1 written back) clamp to 0.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// readUint reads a single-value cgroup file.
func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// parseKeyValues parses "key value" lines (memory.stat, cpu.stat,
// memory.events, memory.oom_control). Lines that do not have exactly two
// fields or whose value is not a number are skipped.
func parseKeyValues(data []byte) map[string]uint64 {
	out := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := parseUint(f[1])
		if err != nil {
			continue
		}
		out[f[0]] = v
	}
	return out
}

// readKeyValues reads a "key value" cgroup file.
func readKeyValues(file string) (map[string]uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseKeyValues(b), nil
}

// ParseMemoryEvents parses a cgroup v2 memory.events file
// ("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n...").
func ParseMemoryEvents(data []byte) map[string]uint64 {
	return parseKeyValues(data)
}

// writeValue writes value to an existing cgroup interface file. It never
// creates the file: cgroupfs answers an attempt to create an unknown file
// with EACCES, which would hide that the controller is missing.
func writeValue(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
