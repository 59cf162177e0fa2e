package vm

import (
	"regexp"
	"strings"

	"github.com/opengcs/opengcs/internal/logging"
)

// kernelLine matches a kernel message on the console (printk time prefix).
var kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\]`)

// kernelAfterEntry finds a kernel message that printk put on the serial
// console between the end of a JSON entry and its newline.
var kernelAfterEntry = regexp.MustCompile(`\}\[\s*\d+\.\d+\]`)

// ConsoleNonJSON returns the console lines that the gcs's JSON log would
// not accept. Under QEMU the gcs's stderr shares the serial console with
// init's markers ("opengcs-init: ...") and kernel messages ("[   1.234]
// ..."); every other non-blank line must be one JSON log entry with time,
// level and msg (logging.CheckLine), as the host's decoder requires. A
// kernel message that the console printed between an entry's closing
// brace and its newline is split off (it happens around SCSI hot-plugs).
func ConsoleNonJSON(console string) []string {
	var bad []string
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimRight(line, "\r")
		if loc := kernelAfterEntry.FindStringIndex(line); loc != nil {
			// The entry itself ends at the brace; the kernel's line is its own.
			line = line[:loc[0]+1]
		}
		switch {
		case strings.TrimSpace(line) == "",
			strings.HasPrefix(line, "opengcs-init:"),
			kernelLine.MatchString(line):
			continue
		}
		if err := logging.CheckLine([]byte(line)); err != nil {
			bad = append(bad, line)
		}
	}
	return bad
}
