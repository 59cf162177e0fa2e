package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/vsockexec"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

func main() {
	o, err := vsockexec.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tr, err := transport.Parse(o.Transport)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vsockexec:", err)
		os.Exit(1)
	}
	log := logrus.New()
	log.SetOutput(os.Stderr)
	ctx := context.Background()
	if o.Relay {
		status, err := vsockexec.Relay(ctx, tr, o, 100*time.Millisecond, logrus.NewEntry(log))
		if err != nil {
			fmt.Fprintln(os.Stderr, "vsockexec:", err)
		}
		os.Exit(status)
	}
	err = vsockexec.Exec(ctx, tr, o)
	fmt.Fprintln(os.Stderr, "vsockexec:", err)
	os.Exit(1)
}
