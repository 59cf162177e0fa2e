package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/storage/devices"
	"github.com/opengcs/opengcs/internal/storage/scsi"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// storageEnv is an env whose gcs looks hardware up in a fake sysfs and
// /dev tree. Only that lookup tree is fake: the nodes in it are real block
// nodes of real loop devices, and the gcs mounts them for real in its own
// mount namespace.
type storageEnv struct {
	*env
	roots devices.Roots
	// base is the parent of every t.TempDir() of the test: image files
	// (loop backing files) and the fake trees live below it.
	base string
}

// newStorageEnv starts a gcs with -sysfs-root/-dev-root pointing at a fresh
// fake tree. It registers leak checks: before the gcs exits, nothing it
// mounted for a host request may remain in its mount namespace; after it is
// gone, no loop device may still be attached to one of the test's files and
// nothing may be mounted below the test's directories.
func newStorageEnv(t *testing.T) *storageEnv {
	t.Helper()
	return newStorageEnvArgs(t)
}

// newStorageEnvArgs is newStorageEnv with extra gcs flags.
func newStorageEnvArgs(t *testing.T, args ...string) *storageEnv {
	t.Helper()
	roots := storagetest.FakeRoots(t)
	base := filepath.Dir(filepath.Dir(roots.Sys))
	// Registered before the gcs starts, so it runs after the gcs has been
	// stopped and every loop device detached.
	t.Cleanup(func() {
		storagetest.NoLoopsFor(t, base)
		storagetest.NoMountsUnder(t, base)
		noDeviceMapperDevices(t)
	})
	g := gcstest.Start(t, gcstest.Options{Args: append([]string{"-sysfs-root", roots.Sys, "-dev-root", roots.Dev}, args...)})
	c := connect(t, g)
	s := &storageEnv{env: &env{t: t, g: g, c: c}, roots: roots, base: base}
	// Registered after the gcs started, so it runs before it is stopped
	// (and after the teardown that tests register later).
	t.Cleanup(func() {
		if !t.Failed() {
			s.assertGuestClean()
		}
	})
	return s
}

// guestMount is one line of the gcs's mountinfo.
type guestMount struct {
	point, fstype, source, options string
	optional                       []string // e.g. shared:N, master:N
}

// guestMounts returns the mounts of the gcs's mount namespace.
func (s *storageEnv) guestMounts() []guestMount {
	s.t.Helper()
	pid, err := s.g.Pid()
	if err != nil {
		s.t.Fatalf("gcs pid: %v", err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		s.t.Fatalf("gcs mountinfo: %v", err)
	}
	defer f.Close()
	var out []guestMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 6 || len(b) < 2 {
			continue
		}
		m := guestMount{point: a[4], options: a[5], optional: a[6:], fstype: b[0], source: b[1]}
		out = append(out, m)
	}
	return out
}

// guestMount returns the gcs's mount at point, if any.
func (s *storageEnv) guestMountAt(point string) (guestMount, bool) {
	s.t.Helper()
	var found guestMount
	ok := false
	for _, m := range s.guestMounts() {
		if m.point == point {
			found, ok = m, true // the last one is the top of a stack
		}
	}
	return found, ok
}

// assertGuestClean fails the test if the gcs still has a mount made for a
// host request (anything below /run, or of a node in the fake /dev), or if
// a directory a host request names is left in its /run.
func (s *storageEnv) assertGuestClean() {
	s.t.Helper()
	for _, m := range s.guestMounts() {
		if strings.HasPrefix(m.point, "/run/") || strings.HasPrefix(m.source, s.roots.Dev) {
			s.t.Errorf("gcs still has %s mounted at %s (%s)", m.source, m.point, m.fstype)
		}
	}
	for _, d := range []string{"/run/mounts/scsi", "/run/layers", "/run/gcs/c"} {
		p, err := s.g.Root(d)
		if err != nil {
			s.t.Fatal(err)
		}
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			s.t.Errorf("left behind in the guest: %s/%s", d, e.Name())
		}
	}
}

// guestPath maps a path of the gcs's mount namespace.
func (s *storageEnv) guestPath(p string) string {
	s.t.Helper()
	r, err := s.g.Root(p)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// guestExists reports whether p exists (without following a final symlink)
// in the gcs's mount namespace.
func (s *storageEnv) guestExists(p string) bool {
	s.t.Helper()
	_, err := os.Lstat(s.guestPath(p))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.t.Fatal(err)
	}
	return err == nil
}

// scsiDisk plugs realDev into the fake sysfs as LUN lun of host controller
// c, whose Linux SCSI host number is host (deliberately different from c,
// as on Hyper-V). It returns the sysfs delete file the guest writes to
// unplug the disk.
func (s *storageEnv) scsiDisk(c uint8, host int, lun uint8, disk, realDev string) string {
	s.t.Helper()
	guid, err := scsi.ControllerGUID(c)
	if err != nil {
		s.t.Fatal(err)
	}
	storagetest.AddSCSIHost(s.t, s.roots, guid, host)
	storagetest.AddSCSIDisk(s.t, s.roots, host, lun, disk, realDev, nil)
	return s.roots.SysPath("bus", "scsi", "devices", fmt.Sprintf("%d:0:0:%d", host, lun), "delete")
}

// modify sends one UVM-level ModifySettings.
func (s *storageEnv) modify(requestType, resourceType string, settings any) error {
	return s.c.Modify(ctxT(s.t, 60*time.Second), prot.NullContainerID, requestType, resourceType, settings)
}

// mustModify is modify that fails the test on error.
func (s *storageEnv) mustModify(requestType, resourceType string, settings any) {
	s.t.Helper()
	if err := s.modify(requestType, resourceType, settings); err != nil {
		s.t.Fatalf("%s %s: %v", requestType, resourceType, err)
	}
}

// runInit starts the container's init (already created by e.create) with
// stdout and returns what it printed and its exit code.
func (s *storageEnv) runInit(id string) (string, uint32) {
	s.t.Helper()
	p := s.exec(id, nil, false, true, false)
	out := readAll(s.t, p.stdio, hostclient.StdOut)
	code := s.wait(id, p.pid)
	s.notification(id)
	return out, code
}

// busyboxLayer builds a read-only layer the way hosts ship them: a tar of
// a busybox root file system plus files (name -> content), converted with
// hcsshim's tar2ext4 (whiteouts converted, VHD footer appended). It
// returns the image file.
func busyboxLayer(t *testing.T, files map[string]string) string {
	t.Helper()
	return layerImage(t, files, tar2ext4.ConvertWhiteout, tar2ext4.AppendVhdFooter)
}

// layerImage converts a busybox root file system plus files with tar2ext4
// and opts into an image file, which it returns.
func layerImage(t *testing.T, files map[string]string, opts ...tar2ext4.Option) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := testutil.BusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(dir, pw)) }()
	img := filepath.Join(t.TempDir(), "layer.vhd")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tar2ext4.Convert(pr, f, opts...); err != nil {
		t.Fatalf("tar2ext4: %v", err)
	}
	return img
}

// tarDir writes dir as a tar stream with paths relative to dir.
func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			if _, err := io.Copy(tw, in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// debugfsCat reads file from the ext4 file system on dev without mounting
// it.
func debugfsCat(t *testing.T, dev, file string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+file, dev).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s on %s: %v", file, dev, err)
	}
	return string(out)
}

// noDeviceMapperDevices fails the test if any device-mapper device made by
// the gcs (dm-linear-*, dm-verity-*, dm-crypt-*) exists.
func noDeviceMapperDevices(t *testing.T) {
	t.Helper()
	names, _ := filepath.Glob("/sys/block/dm-*/dm/name")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		for _, p := range []string{"dm-linear-", "dm-verity-", "dm-crypt-"} {
			if strings.HasPrefix(name, p) {
				t.Errorf("device-mapper device %s left behind", name)
			}
		}
	}
}

// ctxErr is a bounded context for calls that must not hang.
func ctxErr(t *testing.T) context.Context { return ctxT(t, 60*time.Second) }
