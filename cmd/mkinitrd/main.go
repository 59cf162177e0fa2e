package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/opengcs/opengcs/internal/initrd"
)

func main() {
	var (
		l                 initrd.Layout
		out, rootfs, cpio string
		kernel            string
		busybox, commit   string
		noModules         bool
		noHostPrograms    bool
		report            bool
	)
	flag.StringVar(&l.Init, "init", "bin/init", "static init binary")
	flag.StringVar(&l.GCS, "gcs", "bin/gcs", "gcs binary")
	flag.StringVar(&l.VsockExec, "vsockexec", "bin/vsockexec", "vsockexec binary")
	flag.StringVar(&l.Runc, "runc", "bin/runc-static", "static runc binary (empty: none)")
	flag.StringVar(&busybox, "busybox", "", "static busybox (default: busybox on PATH; \"none\": leave out)")
	flag.StringVar(&l.ModulesDir, "modules-dir", "", "kernel /lib/modules/<release> (default: newest of Debian's generic flavour, *-"+initrd.KernelFlavour+")")
	flag.BoolVar(&noModules, "no-modules", false, "carry no kernel modules")
	flag.BoolVar(&noHostPrograms, "no-host-programs", false, "leave out mkfs.ext4, mkfs.xfs and chronyd (initrd.HostPrograms) and their libraries")
	flag.StringVar(&commit, "commit", "", "written to /info/gcs.commit")
	flag.StringVar(&out, "o", "out/initrd.img", "gzip'd newc initrd to write")
	flag.StringVar(&rootfs, "rootfs", "out/rootfs.tar.gz", "rootfs tarball to write (empty: none)")
	flag.StringVar(&cpio, "cpio", "", "also write the uncompressed cpio here")
	flag.StringVar(&kernel, "kernel", "", "also copy /boot/vmlinuz-<release> of the modules' kernel here (a host's boot file \"kernel\")")
	flag.BoolVar(&report, "report", false, "print what each part of the image costs unpacked (bytes, files)")
	flag.Parse()

	if !noHostPrograms {
		l.Programs = initrd.HostPrograms
	}
	if err := run(&l, busybox, commit, noModules, report, out, rootfs, cpio, kernel); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitrd:", err)
		os.Exit(1)
	}
}

func run(l *initrd.Layout, busybox, commit string, noModules, report bool, out, rootfs, cpio, kernel string) error {
	switch busybox {
	case "none":
	case "":
		if p, err := exec.LookPath("busybox"); err == nil {
			l.Busybox = p
		}
	default:
		l.Busybox = busybox
	}
	if l.Busybox != "" {
		applets, err := initrd.BusyboxApplets(l.Busybox)
		if err != nil {
			return err
		}
		l.BusyboxApplets = applets
	}
	if kernel != "" && noModules {
		return fmt.Errorf("-kernel needs the modules of that kernel (drop -no-modules)")
	}
	if noModules {
		l.ModulesDir = ""
	} else if l.ModulesDir == "" {
		l.ModulesDir = initrd.FindModulesDir(initrd.KernelFlavour)
		if l.ModulesDir == "" {
			return fmt.Errorf("no /lib/modules/*-%s (install linux-image-amd64 or pass -no-modules)", initrd.KernelFlavour)
		}
	}
	if commit != "" {
		l.Info = map[string]string{"gcs.commit": commit + "\n"}
	}
	t, err := l.Build()
	if err != nil {
		return err
	}
	outputs := []struct {
		path  string
		write func(*bufio.Writer) error
	}{
		{out, func(w *bufio.Writer) error { return t.WriteInitrd(w) }},
		{rootfs, func(w *bufio.Writer) error { return t.WriteRootfsTar(w) }},
		{cpio, func(w *bufio.Writer) error { return t.WriteCPIO(w) }},
	}
	if kernel != "" {
		// The modules only load into the kernel they were built for.
		src := filepath.Join("/boot", "vmlinuz-"+filepath.Base(filepath.Clean(l.ModulesDir)))
		outputs = append(outputs, struct {
			path  string
			write func(*bufio.Writer) error
		}{kernel, func(w *bufio.Writer) error { return copyFrom(w, src) }})
	}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		if err := writeFile(o.path, o.write); err != nil {
			return err
		}
	}
	if report {
		parts, err := l.Parts(t)
		if err != nil {
			return err
		}
		return initrd.WriteParts(os.Stdout, parts)
	}
	return nil
}

func copyFrom(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// writeFile writes atomically: a temporary file renamed into place.
func writeFile(path string, fill func(*bufio.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkinitrd-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := fill(w); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
