package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/cgroup"
	"github.com/opengcs/opengcs/internal/command"
	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/memtrim"
	"github.com/opengcs/opengcs/internal/network"
	"github.com/opengcs/opengcs/internal/network/ifname"
	"github.com/opengcs/opengcs/internal/network/netconf"
	"github.com/opengcs/opengcs/internal/policy"
	"github.com/opengcs/opengcs/internal/poweroff"
	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/internal/storage"
	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/tracing"
	"github.com/opengcs/opengcs/internal/uvm"
	"github.com/opengcs/opengcs/internal/vpci"
	"github.com/opengcs/opengcs/service/gcs/bridge"
	"github.com/opengcs/opengcs/service/gcs/handlers"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/runtime/runc"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

type options struct {
	logLevel         string
	logFile          string
	logFormat        string
	kmsgLogLevel     uint
	useInOutErr      bool
	v4               bool
	rootMemReserve   uint64
	gcsMemLimit      uint64
	coreDumpLocation string
	disableTimeSync  bool
	scrubLogs        bool
	initialPolicy    string
	transport        string
	listen           bool
	sequential       bool
	maxRequestSize   uint
	redialInterval   time.Duration
	runcBinary       string
	runcRoot         string
	noPivot          bool
	cgroupPrefix     string
	maxProcs         int
	cgroupRoot       string
	sysfsRoot        string
	devRoot          string
	eagerCreate      bool
	memTrimInterval  time.Duration
	trace            bool
}

// newFlagSet defines every flag of the gcs on o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("gcs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.logLevel, "loglevel", "debug", "logging level: trace, debug, info, warning, error, fatal, panic")
	fs.StringVar(&o.logFile, "logfile", "", "write logs to this file instead of stderr")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.UintVar(&o.kmsgLogLevel, "kmsgLogLevel", 4, "forward /dev/kmsg records with priority <= this (0-7)")
	fs.BoolVar(&o.useInOutErr, "use-inouterr", false, "serve the bridge on stdin/stdout")
	fs.BoolVar(&o.v4, "v4", false, "enable the v4 bridge protocol (required by every host)")
	fs.BoolVar(&o.trace, "trace", true, "with -v4: a span per request, child of the host's trace context, logged when it ends")
	fs.Uint64Var(&o.rootMemReserve, "root-mem-reserve-bytes", 75<<20, "memory kept out of the containers' cgroup limit")
	fs.Uint64Var(&o.gcsMemLimit, "gcs-mem-limit-bytes", 50<<20, "memory use of the /gcs cgroup that triggers a warning")
	fs.StringVar(&o.coreDumpLocation, "core-dump-location", "", "written to /proc/sys/kernel/core_pattern when set")
	fs.BoolVar(&o.disableTimeSync, "disable-time-sync", false, "do not start time synchronisation")
	fs.BoolVar(&o.scrubLogs, "scrub-logs", true, "scrub environment variables and annotations from logged payloads")
	fs.StringVar(&o.initialPolicy, "initial-policy-stance", "allow", "allow or deny every request until a security policy is set")
	fs.StringVar(&o.transport, "transport", "vsock", "vsock, or unix:<prefix> (port N is the unix socket <prefix>_N)")
	fs.BoolVar(&o.listen, "listen", false, "accept the host's bridge connection instead of dialling it")
	fs.BoolVar(&o.sequential, "sequential", false, "handle requests one at a time (default on when /dev/sev or /dev/sev-guest exists)")
	fs.UintVar(&o.maxRequestSize, "max-request-bytes", bridge.DefaultMaxRequestSize, "largest request frame accepted, header included")
	fs.DurationVar(&o.redialInterval, "redial-interval", 100*time.Millisecond, "pause between bridge connection attempts")
	fs.StringVar(&o.runcBinary, "runc", "runc", "the runc binary (a path, or a name looked up in PATH)")
	fs.StringVar(&o.runcRoot, "runc-root", "/run/runc", "runc's state directory")
	fs.BoolVar(&o.noPivot, "no-pivot", true, "run containers with runc --no-pivot (required on an initramfs root)")
	fs.StringVar(&o.cgroupPrefix, "cgroup-prefix", "", "prefix of every cgroup the gcs creates (tests use a private one)")
	fs.IntVar(&o.maxProcs, "max-procs", 1, "GOMAXPROCS of the gcs (0: one per CPU); the gcs waits on I/O, and one P avoids cross-thread wake-ups (docs/performance.md)")
	fs.StringVar(&o.cgroupRoot, "cgroup-root", "/sys/fs/cgroup", "where the cgroup file systems are mounted")
	fs.StringVar(&o.sysfsRoot, "sysfs-root", "/sys", "where hardware lookups read sysfs (tests point it at a fake tree)")
	fs.StringVar(&o.devRoot, "dev-root", "/dev", "where hardware lookups find device nodes")
	fs.BoolVar(&o.eagerCreate, "eager-create", false, "run runc create at every Create instead of one runc run at the init's start where possible (docs/containers.md)")
	fs.DurationVar(&o.memTrimInterval, "memory-trim-interval", memtrim.DefaultInterval, "after a burst of work, return freed memory to the system once an interval passes quietly (0: never)")
	return fs
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Println("Usage: gcs [flags]")
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.kmsgLogLevel > 7 {
		return nil, fmt.Errorf("-kmsgLogLevel %d: must be 0..7", o.kmsgLogLevel)
	}
	switch o.initialPolicy {
	case policy.StanceAllow, policy.StanceDeny:
	default:
		return nil, fmt.Errorf("-initial-policy-stance %q: must be allow or deny", o.initialPolicy)
	}
	if o.maxRequestSize < prot.HeaderSize || o.maxRequestSize > 1<<30 {
		return nil, fmt.Errorf("-max-request-bytes %d: must be between %d and 1GiB", o.maxRequestSize, prot.HeaderSize)
	}
	if _, err := transport.Parse(o.transport); err != nil {
		return nil, fmt.Errorf("-transport: %w", err)
	}
	if o.maxProcs < 0 {
		return nil, fmt.Errorf("-max-procs %d: must be 0 or more", o.maxProcs)
	}
	if o.useInOutErr && o.listen {
		return nil, errors.New("-use-inouterr and -listen cannot be combined")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	var log *logrus.Logger
	if err == nil {
		log, err = logging.New(logging.Config{Level: o.logLevel, Format: o.logFormat, File: o.logFile, Out: os.Stderr})
	}
	if err != nil {
		badCommandLine(err)
	}
	// A library that prints through the standard library's log package
	// (vishvananda/netlink does, for attributes it cannot parse) would
	// put plain text on stderr; its lines become warnings instead.
	stdlog.SetFlags(0)
	stdlog.SetOutput(log.WithField("source", "stdlib-log").WriterLevel(logrus.WarnLevel))
	// hcsshim's security-policy code logs through logrus's standard
	// logger: its entries go to the gcs logger instead (so they follow its
	// format, level and the policy's runtime-logging switch).
	forwardStandardLogger(log)
	if err := run(o, log); err != nil {
		log.WithError(err).Fatal("gcs failed")
	}
}

// badCommandLine reports a flag error and exits with status 2. No logger
// exists yet, so it writes one line on stderr: a fatal JSON entry when
// the arguments ask for -log-format json (the host reads every line of
// that stream as JSON), else "gcs: <reason>".
func badCommandLine(err error) {
	if logging.FormatFromArgs(os.Args[1:]) == logging.FormatJSON {
		logging.Early(os.Args[1:], os.Stderr).WithError(err).Log(logrus.FatalLevel, "gcs: bad command line")
	} else {
		fmt.Fprintf(os.Stderr, "gcs: %v\n", err)
	}
	os.Exit(2)
}

func sevPresent() bool {
	for _, p := range []string{"/dev/sev", "/dev/sev-guest"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// runtimeLogging returns the switch a security policy uses to silence the
// log stream (a policy that denies runtime logging) or restore it.
func runtimeLogging(log *logrus.Logger) func(bool) {
	out := log.Out
	return func(allowed bool) {
		if allowed {
			log.SetOutput(out)
		} else {
			log.SetOutput(io.Discard)
		}
	}
}

// forwardStandardLogger makes logrus's standard logger write nothing
// itself and hand every entry to log, marked source=hcsshim.
func forwardStandardLogger(log *logrus.Logger) {
	std := logrus.StandardLogger()
	std.SetOutput(io.Discard)
	std.SetLevel(log.GetLevel())
	std.AddHook(forwardHook{to: log})
}

// forwardHook re-logs an entry of another logger through to.
type forwardHook struct{ to *logrus.Logger }

func (forwardHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h forwardHook) Fire(e *logrus.Entry) error {
	level := e.Level
	if level < logrus.ErrorLevel {
		level = logrus.ErrorLevel // never panic or exit on another logger's behalf
	}
	h.to.WithFields(e.Data).WithField("source", "hcsshim").WithTime(e.Time).Log(level, e.Message)
	return nil
}

func run(o *options, log *logrus.Logger) error {
	if o.maxProcs > 0 {
		runtime.GOMAXPROCS(o.maxProcs)
	}
	entry := logrus.NewEntry(log)
	entry.WithFields(logrus.Fields{"transport": o.transport, "listen": o.listen, "v4": o.v4}).Info("GCS started")

	tr, err := transport.Parse(o.transport)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rp, err := reaper.New(reaper.Options{Logger: entry})
	if err != nil {
		return fmt.Errorf("child reaper: %w", err)
	}
	defer rp.Close()
	cgroups, layout, err := startDuties(ctx, o, entry, command.Reaper(rp))
	if err != nil {
		return err
	}
	defer layout.Teardown()
	rt, err := runc.New(runc.Options{Binary: o.runcBinary, Root: o.runcRoot, NoPivot: o.noPivot, Reaper: rp, Logger: entry})
	if err != nil {
		return fmt.Errorf("runc runtime: %w", err)
	}

	netMgr, err := network.New(network.Options{
		Resolver: ifname.New(o.sysfsRoot),
		DHCP:     netconf.DHCPClient{Runner: command.Reaper(rp)},
		Log:      entry.WithField("component", "network"),
	})
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	defer netMgr.Close()
	enforcer, err := policy.New(policy.Config{
		Log:            entry,
		Stance:         o.initialPolicy,
		SNP:            policy.DeviceSNP{DevRoot: o.devRoot},
		RuntimeLogging: runtimeLogging(log),
	})
	if err != nil {
		return err
	}
	store := storage.NewManager(devices.Roots{Sys: o.sysfsRoot, Dev: o.devRoot}, tr, command.Reaper(rp),
		storage.WithLogger(entry.WithField("component", "storage")))

	var tracer *tracing.Tracer
	if o.v4 && o.trace {
		tracer = tracing.New(entry)
		defer func() { _ = tracer.Shutdown(context.Background()) }()
	}
	mux := bridge.NewMux()
	b := bridge.New(bridge.Config{
		Tracer:         tracer,
		Mux:            mux,
		EnableV4:       o.v4,
		Capabilities:   prot.LinuxCapabilities(),
		MaxRequestSize: uint32(o.maxRequestSize),
		Sequential:     o.sequential || sevPresent(),
		Log:            entry,
	})
	power := poweroff.New(poweroff.Options{})
	host := uvm.New(uvm.Config{
		Log:          entry,
		Transport:    tr,
		Runtime:      rt,
		Reaper:       rp,
		Notifier:     b,
		CgroupPrefix: o.cgroupPrefix,
		Storage:      store,
		Network:      netMgr,
		DevRoot:      o.devRoot,
		Policy:       enforcer,
		VPCI:         vpci.New(devices.Roots{Sys: o.sysfsRoot, Dev: o.devRoot}),
		EagerCreate:  o.eagerCreate,
		Stats:        cgroups.StatsJSON,
		UpdatePodMemoryLimit: func() error {
			_, _, err := layout.UpdatePodsLimit()
			return err
		},
		CreatePodCgroup: func(p string, res *specs.LinuxResources) error {
			_, err := cgroups.CreateWithResources(p, res)
			return err
		},
		RemovePodCgroup: func(p string) error {
			cg, err := cgroups.Load(p)
			if errors.Is(err, cgroup.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			return cg.Delete()
		},
		PowerOff: power.PowerOff,
	})
	handlers.Register(mux, host)
	if o.memTrimInterval > 0 {
		go memtrim.New(memtrim.Options{Interval: o.memTrimInterval, Log: entry}).Run(ctx)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	go func() {
		s := <-sigs
		entry.WithField("signal", s).Info("terminating")
		cancel()
	}()
	go func() {
		select {
		case <-power.Done():
			cancel()
		case <-ctx.Done():
		}
	}()

	return serve(ctx, o, tr, b, entry)
}

// serve runs the bridge over successive connections until ctx ends.
func serve(ctx context.Context, o *options, tr transport.Transport, b *bridge.Bridge, log *logrus.Entry) error {
	if o.useInOutErr {
		err := b.Serve(ctx, &transport.StdioConn{R: os.Stdin, W: os.Stdout})
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("bridge on stdin/stdout ended: %w", err)
	}
	var l net.Listener
	if o.listen {
		var err error
		if l, err = tr.Listen(transport.BridgePort); err != nil {
			return err
		}
		defer l.Close()
		go func() { <-ctx.Done(); _ = l.Close() }()
	}
	for ctx.Err() == nil {
		conn, err := connect(ctx, tr, l)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.WithError(err).Debug("bridge connect failed; retrying")
			sleep(ctx, o.redialInterval)
			continue
		}
		_ = b.Serve(ctx, conn)
		sleep(ctx, o.redialInterval)
	}
	return nil
}

func connect(ctx context.Context, tr transport.Transport, l net.Listener) (net.Conn, error) {
	if l != nil {
		return l.Accept()
	}
	return tr.Dial(ctx, transport.BridgePort)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
