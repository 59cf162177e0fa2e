package uvm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/reaper"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/stdio"
)

// startExternal runs a process in the utility VM's own namespaces
// (docs/lifecycle.md, "External processes").
func (h *Host) startExternal(ctx context.Context, params *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error) {
	if h.cfg.Reaper == nil {
		return 0, prot.Errorf(prot.HrFail, "external processes need a reaper")
	}
	argv := params.CommandArgs
	if len(argv) == 0 {
		var err error
		if argv, err = splitCommandLine(params.CommandLine); err != nil {
			return 0, prot.Errorf(prot.HrFail, "external process command line %q: %v", params.CommandLine, err)
		}
	}
	if len(argv) == 0 {
		return 0, prot.Errorf(prot.HrFail, "external process has no command")
	}
	env, grant, err := h.policy.ExecExternal(ctx, argv, environ(params.Environment), params.WorkingDirectory)
	if err != nil {
		return 0, err
	}
	streams, err := policedStreams(params, !grant.AllowStdio, params.EmulateConsole)
	if err != nil {
		return 0, err
	}
	path, err := lookPath(argv[0], h.cfg.ExternalPath)
	if err != nil {
		return 0, prot.Errorf(prot.HrFail, "external process: %v", err)
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: params.WorkingDirectory, Env: env}

	conns, err := stdio.Connect(ctx, h.log, h.cfg.Transport, ports, streams)
	if err != nil {
		return 0, prot.Errorf(prot.HrFail, "external process stdio: %v", err)
	}

	var relay stdio.Relay
	if params.EmulateConsole {
		master, slave, err := stdio.OpenPty()
		if err != nil {
			conns.Close()
			return 0, prot.Errorf(prot.HrFail, "external process console: %v", err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		tty, err := stdio.NewTtyRelay(master, h.cfg.StdioOptions...)
		if err != nil {
			master.Close()
			slave.Close()
			conns.Close()
			return 0, prot.Errorf(prot.HrFail, "external process console relay: %v", err)
		}
		relay = tty
		defer slave.Close()
	} else {
		files, err := conns.Files()
		if err != nil {
			conns.Close()
			return 0, prot.Errorf(prot.HrFail, "external process stdio: %v", err)
		}
		// The child owns the sockets; the GCS keeps no copy.
		defer files.Close()
		defer conns.Close()
		if files.In != nil {
			cmd.Stdin = files.In
		}
		if files.Out != nil {
			cmd.Stdout = files.Out
		}
		if files.Err != nil {
			cmd.Stderr = files.Err
		}
	}

	proc, err := h.cfg.Reaper.Start(cmd)
	if err != nil {
		if relay != nil {
			relay.Close()
			conns.Close()
		}
		return 0, prot.Errorf(prot.HrFail, "start external process %q: %v", argv[0], err)
	}
	if relay != nil {
		if err := relay.Start(conns); err != nil {
			conns.Close()
			h.log.WithError(err).Warn("external process console relay did not start")
		}
	}
	pid := uint32(proc.Pid())
	p := newProcess(pid, relay, func(sig int) error { return proc.Signal(syscall.Signal(sig)) })
	h.externals.add(p)
	log := h.log.WithFields(logrus.Fields{"pid": pid, "argv0": argv[0]})
	log.Info("external process started")
	go func() {
		exit, err := proc.Wait(context.Background())
		code := externalExitCode(exit, err)
		if relay != nil {
			relay.ProcessExited()
			if err := relay.Wait(); err != nil {
				log.WithError(err).Debug("external process relay ended")
			}
		}
		log.WithField("exitCode", int32(code)).Info("external process exited")
		p.finish(code)
	}()
	return pid, nil
}

// externalExitCode follows Go's ExitCode: the status, or -1 (sent as
// 0xFFFFFFFF) when killed by a signal.
func externalExitCode(e reaper.Exit, err error) uint32 {
	if err != nil || e.Status.Signaled() {
		return 0xFFFFFFFF
	}
	return uint32(e.Status.ExitStatus())
}

// environ turns the host's map into K=V pairs, sorted for determinism.
func environ(m map[string]string) []string {
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// lookPath finds file on path (a name with a slash is used as is).
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in %s", file, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
