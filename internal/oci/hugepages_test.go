package oci

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// inPrivateMountNS runs fn on a dedicated OS thread that has its own mount
// namespace with private propagation, so nothing fn mounts is visible to
// (or propagates into) the rest of the machine. The thread is never
// unlocked: when the goroutine ends, the runtime destroys the thread and
// the namespace with every mount still in it.
func inPrivateMountNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("make / rprivate: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// mountsAt lists the filesystem types mounted exactly at p, as the calling
// thread sees them.
func mountsAt(p string) ([]string, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var types []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && len(fields) > 4 && fields[4] == p {
				types = append(types, fields[i+1])
			}
		}
	}
	return types, sc.Err()
}

func hugetlbfsSupported() bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil || !strings.Contains(string(b), "\thugetlbfs\n") {
		return false
	}
	_, err = os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB")
	return err == nil
}

func TestSetupWorkloadHugePages(t *testing.T) {
	if !hugetlbfsSupported() {
		t.Skip("kernel without hugetlbfs or 2 MiB huge pages")
	}
	ctx := context.Background()
	podRoot := newPodRoot(t)
	want := filepath.Join(podRoot, HugePagesDir, "2M", "data")
	rootfs, devRoot := makeRootfs(t, "", ""), t.TempDir() // t's helpers stay on the test goroutine
	err := inPrivateMountNS(func() (err error) {
		defer func() {
			// Unmount explicitly too (the namespace would drop it anyway).
			for {
				if unix.Unmount(want, unix.MNT_DETACH) != nil {
					break
				}
			}
		}()
		for round := 0; round < 2; round++ {
			spec := newSpec(rootfs, nil)
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/hugepages", Type: "bind", Source: "hugepages://2M/data", Options: []string{"rbind"}})
			if err := SetupWorkload(ctx, "w1", "s1", podRoot, spec, Options{DevRoot: devRoot}); err != nil {
				return err
			}
			if m := findMount(spec, "/hugepages"); m == nil || m.Source != want {
				return fmt.Errorf("round %d: mount %+v, want source %s", round, m, want)
			}
			// Mounted once, with hugetlbfs, even after the second workload.
			types, err := mountsAt(want)
			if err != nil {
				return err
			}
			if len(types) != 1 || types[0] != "hugetlbfs" {
				return fmt.Errorf("round %d: mounts at %s: %v, want one hugetlbfs", round, want, types)
			}
			var st unix.Statfs_t
			if err := unix.Statfs(want, &st); err != nil {
				return err
			}
			if st.Type != unix.HUGETLBFS_MAGIC || st.Bsize != 2<<20 {
				return fmt.Errorf("statfs %s: type %#x bsize %d", want, st.Type, st.Bsize)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The host's view has no hugetlbfs mount here.
	if types, err := mountsAt(want); err != nil || len(types) != 0 {
		t.Fatalf("mount leaked out of the private namespace: %v %v", types, err)
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("hugepages dir: %v %v", fi, err)
	}
}
