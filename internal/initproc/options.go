package initproc

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/opengcs/opengcs/internal/vsockexec"
)

// Options is init's parsed command line.
type Options struct {
	DebugShell      string   // -d: a shell that becomes the primary child
	EntropyPort     uint32   // -e: vsock port to read boot entropy from
	WritableOverlay bool     // -w: tmpfs overlays on /etc and /var
	Argv            []string // the command to launch
}

// Legacy (LCOW v1) behaviour when init gets no arguments at all.
var (
	legacyArgv  = []string{"/bin/gcs", "-loglevel", "debug", "-logfile=/run/gcs/gcs.log"}
	legacyShell = "/bin/sh"
)

// ParseArgs parses init's arguments (without argv[0]). Options end at the
// first non-option.
func ParseArgs(args []string) (Options, error) {
	if len(args) == 0 {
		return Options{DebugShell: legacyShell, Argv: append([]string(nil), legacyArgv...)}, nil
	}
	var o Options
	var entropy string
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.DebugShell, "d", "", "debug shell")
	fs.StringVar(&entropy, "e", "", "entropy port")
	fs.BoolVar(&o.WritableOverlay, "w", false, "writable /etc and /var overlays")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if entropy != "" {
		var p uint32
		if _, err := fmt.Sscanf(entropy, "%d", &p); err != nil || p == 0 || fmt.Sprint(p) != entropy {
			return o, fmt.Errorf("%w: invalid entropy port %q", ErrUsage, entropy)
		}
		o.EntropyPort = p
	}
	o.Argv = fs.Args()
	if len(o.Argv) == 0 && o.DebugShell == "" {
		return o, fmt.Errorf("%w: no command", ErrUsage)
	}
	return o, nil
}

// Cmdline is the kernel command line split into tokens.
type Cmdline []string

// ParseCmdline splits /proc/cmdline's text. Quoted values ("a b") stay
// one token.
func ParseCmdline(s string) Cmdline {
	var out Cmdline
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case (r == ' ' || r == '\n' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// Value returns the value of key=value (the last one wins, as in the
// kernel) and whether the key was present. Tokens after "--" belong to
// init and are not searched.
func (c Cmdline) Value(key string) (string, bool) {
	val, ok := "", false
	for _, tok := range c {
		if tok == "--" {
			break
		}
		if k, v, found := strings.Cut(tok, "="); found && k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

// Has reports whether the exact token is present before "--".
func (c Cmdline) Has(token string) bool {
	for _, tok := range c {
		if tok == "--" {
			break
		}
		if tok == token {
			return true
		}
	}
	return false
}

// BridgeOverVirtioSerial is the test switch's kernel parameter.
const (
	BridgeParam        = "opengcs.bridge"
	BridgeVirtioSerial = "virtio-serial"
	// BridgePortName is the virtio-serial port name the host exposes.
	BridgePortName = "opengcs.bridge"
)

// SerialArgv turns the production command into the one for the
// virtio-serial test switch: a leading vsockexec wrapper (and its port
// options) is dropped, since its ports do not exist without vsock, and
// -use-inouterr is added after the program name unless present.
func SerialArgv(argv []string) ([]string, error) {
	if len(argv) > 0 && filepath.Base(argv[0]) == "vsockexec" {
		o, err := vsockexec.Parse(argv[1:])
		if err != nil {
			return nil, fmt.Errorf("strip vsockexec wrapper: %w", err)
		}
		argv = o.Argv
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: no command", ErrUsage)
	}
	out := append([]string(nil), argv...)
	for _, a := range out[1:] {
		if a == "-use-inouterr" || strings.HasPrefix(a, "-use-inouterr=") || a == "--use-inouterr" {
			return out, nil
		}
	}
	return append([]string{out[0], "-use-inouterr"}, out[1:]...), nil
}
