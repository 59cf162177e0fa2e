// Package debug produces diagnostics the host can ask for: a dump of every
// goroutine's stack, sized to fit one bridge frame.
package debug
