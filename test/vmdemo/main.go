package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/test/vm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\nvm demo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n▶ "+format+"\n", args...) }
func note(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }

// accel is kvm when /dev/kvm can be opened, tcg otherwise.
func accel() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	return "kvm"
}

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("run me as root")
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repo, err := vm.RepoRoot(wd)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vmdemo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("opengcs vm demo: an LCOW utility VM on Linux, AF_VSOCK through bin/vhost-vsock")
	step("build the image (init, vsockexec, gcs, static runc, kernel modules) and bin/vhost-vsock")
	runc, err := vm.StaticRunc(repo, dir)
	if err != nil {
		return err
	}
	img, err := vm.BuildImage(repo, dir, runc)
	if err != nil {
		return err
	}
	note("kernel %s, initrd %.1f MiB", img.Release, float64(img.Size)/(1<<20))
	backend := filepath.Join(dir, "vhost-vsock")
	build := exec.Command("go", "build", "-trimpath", "-o", backend, "./cmd/vhost-vsock")
	build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build vhost-vsock: %w\n%s", err, out)
	}
	layer := vm.SCSIDisk{ID: "layer0", Image: filepath.Join(dir, "busybox.ext4"), Lun: 3, ReadOnly: true}
	if err := testutil.BusyboxRootfs(filepath.Join(dir, "busybox")); err != nil {
		return err
	}
	if err := vm.DirToExt4(filepath.Join(dir, "busybox"), layer.Image); err != nil {
		return err
	}

	a := accel()
	step("boot: QEMU (%s) + vhost-user-vsock-pci, kernel command line as a host sends it", a)
	v, err := vm.StartVsock(vm.VsockConfig{Image: img, Dir: dir, Backend: backend, Accel: a, GCSArgs: vm.GCSTestArgs})
	if err != nil {
		return err
	}
	defer v.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := v.AcceptBridge(ctx)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, v.Logs())
	}
	c := hostclient.New(conn)
	defer c.Close()
	resp, err := c.Negotiate(ctx)
	if err != nil {
		return err
	}
	note("entropy sent on port 1, gcs log arriving on port 109 (%s)", v.GCSLog)
	note("the gcs dialled the bridge (CID 2, port 0x40000000) %.1fs after QEMU started; protocol version %d",
		time.Since(v.Started).Seconds(), resp.Version)

	step("hot-plug a busybox layer as a SCSI disk (QMP) and map it (MappedVirtualDisk)")
	q, err := v.DialQMP(ctx)
	if err != nil {
		return err
	}
	defer q.Close()
	if err := vm.FakeVMBusSCSI(ctx, c); err != nil {
		return err
	}
	const layerPath = "/run/layers/busybox"
	if err := vm.AttachSCSI(ctx, q, c, layer, layerPath); err != nil {
		return err
	}
	id := fmt.Sprintf("vmdemo%058x", time.Now().UnixNano())
	bundle := "/run/gcs/c/" + id
	rootfs, scratch := bundle+"/rootfs", bundle+"/scratch/"+id
	step("CombinedLayers, then container %s…: init with stdin/stdout/stderr over vsock", id[:16])
	layers := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfs, Layers: []prot.Layer{{Path: layerPath}}, ScratchPath: scratch}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceCombinedLayers, layers); err != nil {
		return err
	}
	s := testutil.Spec("sh", "-c", `echo "hello from a container in the utility VM, kernel $(uname -r)"; read line; echo "init read: $line"; exit 3`)
	s.Hostname, s.Root.Path = "vmdemo", rootfs
	if err := c.CreateContainer(ctx, id, hostclient.ContainerSettings(bundle, scratch, s)); err != nil {
		return err
	}
	if err := c.Start(ctx, id); err != nil {
		return err
	}
	var ports hostclient.PortAllocator
	initPid, initSt, err := startProcess(ctx, v, c, &ports, id, &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true, CreateStdErrPipe: true})
	if err != nil {
		return err
	}
	defer initSt.Close()
	done := stream(initSt.Conn(hostclient.StdOut), "  | ")
	time.Sleep(500 * time.Millisecond)

	step("exec `id` in the running container")
	epid, est, err := startProcess(ctx, v, c, &ports, id, &prot.ProcessParameters{CreateStdOutPipe: true,
		OCIProcess: &specs.Process{Args: []string{"id"}, Cwd: "/", Env: []string{"PATH=/bin"}}})
	if err != nil {
		return err
	}
	<-stream(est.Conn(hostclient.StdOut), "  | ")
	est.Close()
	ecode, err := c.WaitForProcess(ctx, id, epid, prot.InfiniteWaitTimeout)
	if err != nil {
		return err
	}
	note("exec exit code %d", ecode)

	step("init: write \"bye\" to its stdin over vsock and half-close it")
	io.WriteString(initSt.Conn(hostclient.StdIn), "bye\n")
	initSt.CloseStdin()
	<-done
	code, err := c.WaitForProcess(ctx, id, initPid, prot.InfiniteWaitTimeout)
	if err != nil {
		return err
	}
	note("WaitForProcess: exit code %d", code)

	step("teardown: Shutdown, CombinedLayers Remove, DeleteContainerState, SCSI unplug")
	if err := c.Shutdown(ctx, id, false); err != nil {
		return err
	}
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfs}); err != nil {
		return err
	}
	if err := c.DeleteContainerState(ctx, id); err != nil {
		return err
	}
	if err := vm.DetachSCSI(ctx, q, c, layer, layerPath); err != nil {
		return err
	}

	step("power off the UVM (ShutdownGraceful on the null container)")
	go func() { _ = c.Shutdown(context.Background(), prot.NullContainerID, false) }()
	if err := v.Wait(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	if err := v.BackendExit(ctx); err != nil {
		return fmt.Errorf("vhost-vsock: %w", err)
	}
	if bad := v.NonJSONLogLines(); len(bad) > 0 {
		return fmt.Errorf("%d gcs log lines were not JSON, first %q", len(bad), bad[0])
	}
	log, _ := os.ReadFile(v.GCSLog)
	note("QEMU and vhost-vsock exited; %d JSON log lines arrived on port 109", strings.Count(string(log), "\n"))
	fmt.Println("\nvm demo done")
	return nil
}

func startProcess(ctx context.Context, v *vm.VsockVM, c *hostclient.Client, ports *hostclient.PortAllocator, id string, p *prot.ProcessParameters) (uint32, *hostclient.Stdio, error) {
	st, err := hostclient.OpenStdio(v.Transport, ports, p.CreateStdInPipe, p.CreateStdOutPipe, p.CreateStdErrPipe)
	if err != nil {
		return 0, nil, err
	}
	pid, err := c.ExecuteProcess(ctx, id, p, st.Ports)
	if err != nil {
		st.Close()
		return 0, nil, err
	}
	if err := st.Accept(ctx); err != nil {
		st.Close()
		return 0, nil, err
	}
	return pid, st, nil
}

// stream prints r line by line with prefix until EOF.
func stream(r io.Reader, prefix string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Println(prefix + sc.Text())
		}
	}()
	return done
}
