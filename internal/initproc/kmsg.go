package initproc

import (
	"fmt"
	"io"
	"os"
)

// Kernel log levels used by init's diagnostics.
const (
	LevelErr  = 3
	LevelWarn = 4
	LevelInfo = 6
)

// Kmsg writes "<level>init: message" records to the kernel log, falling
// back to Fallback when the kmsg device cannot be opened.
type Kmsg struct {
	Path     string    // normally /dev/kmsg
	Fallback io.Writer // normally stderr
}

func (k Kmsg) log(level int, format string, args ...any) {
	line := fmt.Sprintf("<%d>init: %s\n", level, fmt.Sprintf(format, args...))
	f, err := os.OpenFile(k.Path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(line)
		f.Close()
	}
	if err != nil && k.Fallback != nil {
		fmt.Fprint(k.Fallback, line[3:])
	}
}

// Errorf logs at error level.
func (k Kmsg) Errorf(format string, args ...any) { k.log(LevelErr, format, args...) }

// Warnf logs at warning level.
func (k Kmsg) Warnf(format string, args ...any) { k.log(LevelWarn, format, args...) }

// Infof logs at info level.
func (k Kmsg) Infof(format string, args ...any) { k.log(LevelInfo, format, args...) }
