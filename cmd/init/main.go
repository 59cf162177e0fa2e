package main

import (
	"context"
	"os"

	"github.com/opengcs/opengcs/internal/initproc"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("init: refusing to run: not PID 1\n")
		os.Exit(1)
	}
	c := &initproc.Config{
		Root:      "/",
		Log:       initproc.Kmsg{Path: "/dev/kmsg", Fallback: os.Stderr},
		Console:   os.Stdout,
		Transport: transport.NewVsock(),
	}
	os.Exit(c.Run(context.Background(), os.Args[1:]))
}
