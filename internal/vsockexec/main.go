package vsockexec

import (
	"context"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

// Main is the vsockexec command: it parses args, then execs the program
// (or relays its output with -r, reconnecting every retry) and returns
// the exit status when it does not exec.
//
// Everything it writes is a JSON log entry on os.Stderr: once -e has
// connected stderr to the host's log port, that port is read by a JSON
// decoder (it carries the gcs's JSON log), and the host's command line has
// no way to ask vsockexec for a format. os.Stderr is used rather than a
// writer passed in because Exec replaces descriptor 2 underneath it.
func Main(args []string, retry time.Duration) int {
	log := logrus.NewEntry(logging.JSON(os.Stderr, logrus.InfoLevel)).WithField("component", "vsockexec")
	o, err := Parse(args)
	if err != nil {
		log.WithError(err).Error("vsockexec: bad command line")
		return 1
	}
	tr, err := transport.Parse(o.Transport)
	if err != nil {
		log.WithError(err).Error("vsockexec: bad transport")
		return 1
	}
	ctx := context.Background()
	if o.Relay {
		status, err := Relay(ctx, tr, o, retry, log)
		if err != nil {
			log.WithError(err).Error("vsockexec: relay failed")
		}
		return status
	}
	err = Exec(ctx, tr, o)
	log.WithError(err).WithField("program", o.Argv[0]).Error("vsockexec: cannot start the program")
	return 1
}
