package initrd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// readAll parses a cpio archive back into headers and contents.
func readAll(t *testing.T, r io.Reader) ([]*Header, map[string][]byte) {
	t.Helper()
	cr := NewReader(r)
	var hs []*Header
	data := map[string][]byte{}
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return hs, data
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		b, err := io.ReadAll(cr)
		if err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
		hs = append(hs, h)
		data[h.Name] = b
	}
}

func TestTreeRoundTrip(t *testing.T) {
	host := filepath.Join(t.TempDir(), "blob")
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1000) // not a multiple of 4 after the odd byte
	blob = append(blob, 'x')
	if err := os.WriteFile(host, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	steps := []struct {
		name string
		add  func() error
	}{
		{"file", func() error { return tr.File("etc/a", 0o644, []byte("abc")) }},
		{"empty", func() error { return tr.File("etc/empty", 0o600, nil) }},
		{"host", func() error { return tr.HostFile("bin/blob", 0o755, host) }},
		{"link", func() error { return tr.Symlink("bin/sh", "/bin/busybox") }},
		{"dev", func() error { return tr.CharDev("dev/console", 0o600, 5, 1) }},
		{"dir", func() error { return tr.Dir("a/b/c", 0o700) }},
		{"same file twice", func() error { return tr.File("etc/a", 0o644, []byte("abc")) }},
		{"dir again", func() error { return tr.Dir("a/b", 0o755) }},
	}
	for _, s := range steps {
		if err := s.add(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	var buf bytes.Buffer
	if err := tr.WriteCPIO(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not 4-aligned", buf.Len())
	}
	hs, data := readAll(t, &buf)
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		if h.UID != 0 || h.GID != 0 || h.Mtime != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d, want zeros", h.Name, h.UID, h.GID, h.Mtime)
		}
	}
	want := []string{"a", "a/b", "a/b/c", "bin", "bin/blob", "bin/sh", "dev", "dev/console", "etc", "etc/a", "etc/empty"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("names %v, want %v", names, want)
	}
	byName := map[string]*Header{}
	for _, h := range hs {
		byName[h.Name] = h
	}
	checks := []struct {
		name  string
		mode  uint32
		data  string
		major uint32
		minor uint32
	}{
		{"a/b/c", ModeDir | 0o700, "", 0, 0},
		{"etc/a", ModeRegular | 0o644, "abc", 0, 0},
		{"etc/empty", ModeRegular | 0o600, "", 0, 0},
		{"bin/blob", ModeRegular | 0o755, string(blob), 0, 0},
		{"bin/sh", ModeSymlink | 0o777, "/bin/busybox", 0, 0},
		{"dev/console", ModeCharDev | 0o600, "", 5, 1},
	}
	for _, c := range checks {
		h := byName[c.name]
		if h.Mode != c.mode || string(data[c.name]) != c.data || h.RdevMajor != c.major || h.RdevMinor != c.minor {
			t.Errorf("%s: mode %o rdev %d:%d data %d bytes; want mode %o rdev %d:%d data %d bytes",
				c.name, h.Mode, h.RdevMajor, h.RdevMinor, len(data[c.name]), c.mode, c.major, c.minor, len(c.data))
		}
	}
}

func TestTreeErrors(t *testing.T) {
	tr := NewTree()
	if err := tr.File("x", 0o644, []byte("1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"conflict", tr.File("x", 0o644, []byte("2")), ErrConflict},
		{"file over dir", tr.File("x/y", 0o644, nil), ErrConflict},
		{"root", tr.Dir("/", 0o755), ErrInvalidPath},
		{"missing host file", tr.HostFile("y", 0o755, "/nonexistent/file"), ErrMissingInput},
		{"missing required input", func() error { _, err := (Layout{GCS: "x"}).Build(); return err }(), ErrMissingInput},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func TestWriterRejectsWrongSize(t *testing.T) {
	cw := NewWriter(io.Discard)
	if err := cw.WriteHeader(&Header{Name: "f", Mode: ModeRegular, Size: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("abcd")); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("overlong write: %v, want ErrSizeMismatch", err)
	}
	if _, err := cw.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("close with a byte missing: %v, want ErrSizeMismatch", err)
	}
}

func TestReaderErrors(t *testing.T) {
	var good bytes.Buffer
	tr := NewTree()
	_ = tr.File("f", 0o644, []byte("hello"))
	if err := tr.WriteCPIO(&good); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNoTrailer},
		{"bad magic", append([]byte("070707"), g[6:]...), ErrBadMagic},
		{"bad hex", append(append([]byte{}, g[:6]...), append([]byte("zzzzzzzz"), g[14:]...)...), ErrBadHeader},
		{"truncated", g[:len(g)-130], io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		cr := NewReader(bytes.NewReader(tc.in))
		var err error
		for err == nil {
			_, err = cr.Next()
			if err == nil {
				_, err = io.ReadAll(cr)
			}
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

// fakeInputs writes small stand-ins for the image's binaries.
func fakeInputs(t *testing.T) Layout {
	t.Helper()
	d := t.TempDir()
	l := Layout{Info: map[string]string{"gcs.commit": "abc\n", "gcs.branch": "main\n"}}
	for _, p := range []struct {
		field *string
		name  string
	}{{&l.Init, "init"}, {&l.GCS, "gcs"}, {&l.VsockExec, "vsockexec"}, {&l.Runc, "runc"}} {
		*p.field = filepath.Join(d, p.name)
		if err := os.WriteFile(*p.field, []byte("#!fake "+p.name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		l.Busybox = bb
		l.BusyboxApplets = []string{"bin/sh", "bin/ls", "sbin/init", "linuxrc", "bin/busybox"}
	}
	l.ModulesDir = FindModulesDir(KernelFlavour)
	l.Programs = HostPrograms
	for _, p := range HostPrograms {
		if _, err := os.Stat("/" + p.Path); err != nil {
			l.Programs = nil // not installed here; CI installs them (deps.sh)
		}
	}
	return l
}

func build(t *testing.T, l Layout) (initrd, rootfs []byte) {
	t.Helper()
	tr, err := l.Build()
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := tr.WriteInitrd(&a); err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteRootfsTar(&b); err != nil {
		t.Fatal(err)
	}
	return a.Bytes(), b.Bytes()
}

func TestLayoutReproducible(t *testing.T) {
	l := fakeInputs(t)
	i1, r1 := build(t, l)
	i2, r2 := build(t, l)
	if !bytes.Equal(i1, i2) {
		t.Error("two initrd builds differ")
	}
	if !bytes.Equal(r1, r2) {
		t.Error("two rootfs.tar.gz builds differ")
	}
	// The gzip header must not carry a time or a name.
	zr, err := gzip.NewReader(bytes.NewReader(i1))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header has mtime %v name %q", zr.ModTime, zr.Name)
	}
	hs, data := readAll(t, zr)
	byName := map[string]*Header{}
	var names []string
	for _, h := range hs {
		byName[h.Name] = h
		names = append(names, h.Name)
	}
	if !sort.StringsAreSorted(names) {
		t.Error("entries are not sorted")
	}
	for _, want := range []string{"init", "bin/gcs", "bin/vsockexec", "bin/runc", "dev/console", "proc", "sys", "run", "tmp", "info/gcs.commit"} {
		if byName[want] == nil {
			t.Errorf("image lacks /%s", want)
		}
	}
	if string(data["bin/gcs"]) != "#!fake gcs\n" {
		t.Errorf("/bin/gcs content %q", data["bin/gcs"])
	}
	if h := byName["dev/console"]; h == nil || h.Mode != ModeCharDev|0o600 || h.RdevMajor != 5 || h.RdevMinor != 1 {
		t.Errorf("/dev/console header %+v", h)
	}
	if l.Busybox != "" {
		if h := byName["bin/sh"]; h == nil || h.Mode&ModeTypeMask != ModeSymlink || string(data["bin/sh"]) != "/bin/busybox" {
			t.Errorf("/bin/sh is not a link to busybox: %+v %q", h, data["bin/sh"])
		}
		if byName["linuxrc"] != nil {
			t.Error("linuxrc applet must be left out")
		}
		if byName["bin/busybox"].Mode&ModeTypeMask != ModeRegular {
			t.Error("/bin/busybox must be the binary")
		}
	}
	if l.Programs != nil {
		checks := []struct {
			path string
			mode uint32
			data string // "" = not compared
		}{
			{"sbin/mke2fs", ModeRegular | 0o755, ""},
			{"sbin/mkfs.ext4", ModeSymlink | 0o777, "/sbin/mke2fs"}, // not busybox's mke2fs applet
			{"sbin/mkfs.xfs", ModeRegular | 0o755, ""},
			{"usr/sbin/chronyd", ModeRegular | 0o755, ""},
			{"lib64/ld-linux-x86-64.so.2", ModeRegular | 0o755, ""},
			{"lib/x86_64-linux-gnu/libc.so.6", ModeRegular | 0o755, ""},
			{"lib/x86_64-linux-gnu/libext2fs.so.2", ModeRegular | 0o755, ""},
			{"sbin/udhcpc_config.script", ModeRegular | 0o755, string(UDHCPCScript)},
			{"etc/passwd", ModeRegular | 0o644, string(passwd)},
		}
		for _, c := range checks {
			h := byName[c.path]
			if h == nil || h.Mode != c.mode || (c.data != "" && string(data[c.path]) != c.data) {
				t.Errorf("/%s: header %+v, content %d bytes; want mode %o", c.path, h, len(data[c.path]), c.mode)
			}
		}
		if !strings.Contains(string(data["etc/passwd"]), "\n_chrony:") {
			t.Error("/etc/passwd lacks chronyd's user")
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("host programs missing; test/setup/deps.sh installs e2fsprogs, xfsprogs and chrony")
	}
	if l.ModulesDir != "" {
		rel := filepath.Base(l.ModulesDir)
		dep := string(data["lib/modules/"+rel+"/modules.dep"])
		for _, m := range []string{"virtio_console.ko", "overlay.ko", "virtio_scsi.ko", "dm-verity.ko",
			"dm-crypt.ko", "xts.ko", "ecb.ko", "hv_vmbus.ko", "hv_storvsc.ko", "hv_sock.ko", "hv_utils.ko",
			"ext4.ko", "xfs.ko", "9p.ko", "9pnet_fd.ko", "loop.ko"} {
			if !strings.Contains(dep, "/"+m+":") {
				t.Errorf("modules.dep lacks %s", m)
			}
		}
		// Soft dependencies became dependencies: crc32c_generic is loaded
		// before ext4 asks for crc32c.
		if !strings.Contains(dep, "/ext4.ko:") || !regexp.MustCompile(`(?m)/ext4\.ko:.* kernel/crypto/crc32c_generic\.ko`).MatchString(dep) {
			t.Error("modules.dep does not load crc32c_generic before ext4")
		}
		for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
			f, _, _ := strings.Cut(line, ":")
			h := byName["lib/modules/"+rel+"/"+f]
			st, err := os.Stat(filepath.Join(l.ModulesDir, f))
			if h == nil || err != nil || int64(h.Size) != st.Size() {
				t.Errorf("module %s missing or wrong size in the image", f)
			}
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("no kernel modules installed; test/setup/deps.sh installs linux-image-amd64")
	}
	// The tar holds the same paths.
	zr2, err := gzip.NewReader(bytes.NewReader(r1))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr2)
	var tnames []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("tar %s: uid %d gid %d mtime %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		tnames = append(tnames, strings.TrimSuffix(h.Name, "/"))
	}
	if strings.Join(tnames, ",") != strings.Join(names, ",") {
		t.Error("rootfs tar and initrd list different paths")
	}
}

// TestBusyboxReadsArchive checks the archive with an independent cpio
// reader (busybox's).
func TestBusyboxReadsArchive(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("busybox missing; test/setup/deps.sh installs busybox-static")
		}
		t.Skip("busybox not installed")
	}
	l := fakeInputs(t)
	l.ModulesDir = ""
	tr, err := l.Build()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tr.WriteCPIO(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d", "-m")
	cmd.Dir = dir
	cmd.Stdin = &buf
	// Device nodes need mknod; as root that works, otherwise busybox
	// reports it, so only regular content is compared.
	out, _ := cmd.CombinedOutput()
	got, err := os.ReadFile(filepath.Join(dir, "bin/vsockexec"))
	if err != nil {
		t.Fatalf("busybox cpio did not extract bin/vsockexec: %v (%s)", err, out)
	}
	if string(got) != "#!fake vsockexec\n" {
		t.Errorf("extracted content %q", got)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh link %q %v", target, err)
	}
}
