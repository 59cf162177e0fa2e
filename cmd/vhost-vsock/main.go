package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/vhostuser"
	"github.com/opengcs/opengcs/internal/vsockdev"
)

func main() {
	socket := flag.String("socket", "", "vhost-user unix socket QEMU connects to (required)")
	uds := flag.String("uds", "", "hybrid vsock unix socket prefix (required)")
	cid := flag.Uint64("cid", 3, "guest context id reported in the device config")
	level := flag.String("loglevel", "info", "log level (panic, fatal, error, warn, info, debug, trace)")
	flag.Parse()
	if *socket == "" || *uds == "" || flag.NArg() != 0 || *cid < 3 || *cid > 0xffffffff {
		fmt.Fprintln(os.Stderr, "usage: vhost-vsock -socket PATH -uds PREFIX [-cid N>=3] [-loglevel LEVEL]")
		os.Exit(2)
	}
	lvl, err := logrus.ParseLevel(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vhost-vsock:", err)
		os.Exit(2)
	}
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(lvl)
	logger.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	log := logrus.NewEntry(logger)

	l, err := vhostuser.Listen(*socket)
	if err != nil {
		log.WithError(err).Error("vhost-vsock: start")
		os.Exit(1)
	}
	dev := vsockdev.New(vsockdev.Options{CID: *cid, UDSPrefix: *uds, Log: log})
	if err := dev.ListenHost(); err != nil {
		l.Close()
		log.WithError(err).Error("vhost-vsock: start")
		os.Exit(1)
	}
	err = vhostuser.ServeOne(l, dev, log)
	dev.Close()
	os.Remove(*socket)
	os.Remove(*uds)
	if err != nil {
		log.WithError(err).Error("vhost-vsock: front-end connection failed")
		os.Exit(1)
	}
	log.Info("vhost-vsock: front-end disconnected")
}
