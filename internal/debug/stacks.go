package debug

import (
	"encoding/json"
	"runtime"
)

// truncatedMarker ends a dump that was cut to fit.
const truncatedMarker = "\n...(truncated)\n"

// Stacks returns the stacks of all goroutines in runtime.Stack format,
// truncated so that its JSON string encoding takes at most limit bytes.
func Stacks(limit int) string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		if len(buf) >= 8<<20 {
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return FitJSON(string(buf), limit)
}

// FitJSON cuts s so that its JSON encoding (quotes and escapes included)
// is at most limit bytes, marking the cut.
func FitJSON(s string, limit int) string {
	if encodedLen(s) <= limit {
		return s
	}
	lo, hi := 0, len(s)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if encodedLen(s[:mid]+truncatedMarker) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return s[:lo] + truncatedMarker
}

func encodedLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b)
}
