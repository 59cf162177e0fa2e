package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// gauges is what the load benchmark and the soak read of the gcs.
type gauges struct {
	rss        int64
	goroutines int
	threads    int
	fds        int
	mounts     int
	cgroups    int
	runcDirs   int // container directories in runc's root and the driver's state dir
	zombies    int
}

func (g gauges) String() string {
	return fmt.Sprintf("rss %.1f MiB, goroutines %d, threads %d, fds %d, mounts %d, cgroups %d, runc dirs %d, zombies %d",
		float64(g.rss)/(1<<20), g.goroutines, g.threads, g.fds, g.mounts, g.cgroups, g.runcDirs, g.zombies)
}

var goroutineHeader = regexp.MustCompile(`(?m)^goroutine \d+ `)

// readGauges reads the gcs's gauges: goroutines through DumpStacks, the
// rest from /proc and the cgroup file system.
func (e *ctrEnv) readGauges(ctx context.Context) (gauges, error) {
	var g gauges
	pid, err := e.g.Pid()
	if err != nil {
		return g, err
	}
	if g.rss, err = e.g.RSS(); err != nil {
		return g, err
	}
	stacks, err := e.c.DumpStacks(ctx)
	if err != nil {
		return g, fmt.Errorf("dump stacks: %w", err)
	}
	g.goroutines = len(goroutineHeader.FindAllStringIndex(stacks, -1))
	count := func(dir string) int {
		ents, _ := os.ReadDir(dir)
		return len(ents)
	}
	g.threads = count(fmt.Sprintf("/proc/%d/task", pid))
	g.fds = count(fmt.Sprintf("/proc/%d/fd", pid))
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return g, err
	}
	g.mounts = strings.Count(string(mi), "\n")
	// cgroup v1 (a hybrid host): the memory hierarchy; v2: the unified one.
	root := "/sys/fs/cgroup/memory"
	if _, err := os.Stat(root); err != nil {
		root = "/sys/fs/cgroup"
	}
	_ = filepath.WalkDir(filepath.Join(root, e.g.CgroupPrefix), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			g.cgroups++
		}
		return nil
	})
	for _, dir := range []string{"/run/runc", "/run/gcsrunc"} {
		p, err := e.g.Root(dir)
		if err != nil {
			return g, err
		}
		ents, _ := os.ReadDir(p)
		for _, ent := range ents {
			if ent.IsDir() {
				g.runcDirs++
			}
		}
	}
	myNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		if ns, _ := os.Readlink("/proc/" + p.Name() + "/ns/pid"); ns != myNS {
			continue
		}
		st, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			g.zombies++
		}
	}
	return g, nil
}

// notifier hands each container's exit notification to whoever waits for
// that container, whatever order they arrive in.
type notifier struct {
	mu   sync.Mutex
	subs map[string]chan struct{}
	dups []string
}

func newNotifier(ctx context.Context, c *hostclient.Client) *notifier {
	n := &notifier{subs: map[string]chan struct{}{}}
	go func() {
		for {
			select {
			case nt := <-c.Notifications():
				n.deliver(nt.ContainerID)
			case <-ctx.Done():
				return
			}
		}
	}()
	return n
}

func (n *notifier) ch(id string) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.subs[id]
	if !ok {
		ch = make(chan struct{}, 1)
		n.subs[id] = ch
	}
	return ch
}

func (n *notifier) deliver(id string) {
	select {
	case n.ch(id) <- struct{}{}:
	default:
		n.mu.Lock()
		n.dups = append(n.dups, id)
		n.mu.Unlock()
	}
}

// wait waits for id's notification and forgets id.
func (n *notifier) wait(ctx context.Context, id string) error {
	select {
	case <-n.ch(id):
		n.mu.Lock()
		delete(n.subs, id)
		n.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no exit notification for %s: %w", id, ctx.Err())
	}
}

// stdioContainer is a container whose init has stdin, stdout and stderr
// relayed: it prints "ready", copies stdin to stdout, and prints "bye" on
// stderr at the end. An exec'd process with its own three streams can
// run in it (execCat).
type stdioContainer struct {
	id  string
	pid uint32
	st  *hostclient.Stdio
}

var initScript = []string{"sh", "-c", "echo ready; cat; echo bye >&2"}

// startStdioContainer adds the layers, creates and starts id with its
// init's three streams relayed, and reads "ready".
func (e *ctrEnv) startStdioContainer(ctx context.Context, id string) (*stdioContainer, error) {
	if err := e.addLayers(ctx, id); err != nil {
		return nil, err
	}
	if err := e.c.CreateContainer(ctx, id, hostclient.ContainerSettings(gcsBundle(id), gcsScratch(id), e.spec(id, initScript...))); err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	if err := e.c.Start(ctx, id); err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	pid, st, err := e.execute3(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	c := &stdioContainer{id: id, pid: pid, st: st}
	buf := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(st.Conn(hostclient.StdOut), buf); err != nil || string(buf) != "ready\n" {
		st.Close()
		return nil, fmt.Errorf("%s: first output %q: %v", id, buf, err)
	}
	return c, nil
}

// execute3 runs the init (p == nil) or an exec'd process with all three
// streams relayed.
func (e *ctrEnv) execute3(ctx context.Context, id string, p *prot.ProcessParameters) (uint32, *hostclient.Stdio, error) {
	st, err := hostclient.OpenStdio(e.g.Transport, &e.g.Ports, true, true, true)
	if err != nil {
		return 0, nil, err
	}
	if p == nil {
		p = &prot.ProcessParameters{}
	}
	p.CreateStdInPipe, p.CreateStdOutPipe, p.CreateStdErrPipe = true, true, true
	pid, err := e.c.ExecuteProcess(ctx, id, p, st.Ports)
	if err != nil {
		st.Close()
		return 0, nil, fmt.Errorf("execute process in %s: %w", id, err)
	}
	if err := st.Accept(ctx); err != nil {
		st.Close()
		return 0, nil, err
	}
	return pid, st, nil
}

// roundTrip writes line to stdin, closes it and checks what comes back on
// stdout (want) and stderr (wantErr), then the exit code.
func (e *ctrEnv) roundTrip(ctx context.Context, id string, pid uint32, st *hostclient.Stdio, line, want, wantErr string) error {
	var outs [2][]byte
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range []int{hostclient.StdOut, hostclient.StdErr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = io.ReadAll(st.Conn(s))
			// As a host does: close the stream at EOF (the gcs waits
			// for that before it reports the exit).
			st.Conn(s).Close()
		}()
	}
	if _, err := io.WriteString(st.Conn(hostclient.StdIn), line); err != nil {
		return fmt.Errorf("%s: write stdin: %w", id, err)
	}
	if err := st.CloseStdin(); err != nil {
		return fmt.Errorf("%s: close stdin: %w", id, err)
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("%s: read output: %w", id, err)
	}
	if string(outs[0]) != want || string(outs[1]) != wantErr {
		return fmt.Errorf("%s: stdout %q stderr %q, want %q %q", id, outs[0], outs[1], want, wantErr)
	}
	code, err := e.c.WaitForProcess(ctx, id, pid, prot.InfiniteWaitTimeout)
	if err != nil {
		return fmt.Errorf("wait %s/%d: %w", id, pid, err)
	}
	if code != 0 {
		return fmt.Errorf("%s/%d exited with %d", id, pid, code)
	}
	return nil
}

// finish ends a stdio container: its init echoes a line, exits, and the
// container is deleted after its notification.
func (e *ctrEnv) finish(ctx context.Context, n *notifier, c *stdioContainer) error {
	defer c.st.Close()
	if err := e.roundTrip(ctx, c.id, c.pid, c.st, "x\n", "x\n", "bye\n"); err != nil {
		return err
	}
	if err := n.wait(ctx, c.id); err != nil {
		return err
	}
	if err := e.c.DeleteContainerState(ctx, c.id); err != nil {
		return fmt.Errorf("delete %s: %w", c.id, err)
	}
	return e.removeLayers(ctx, c.id)
}

// settle polls the gauges until goroutines, fds, mounts, cgroups and
// runc state are back at idle's and no zombie is left, or 45 s pass, and
// returns the last reading. The bridge keeps an idle request worker
// goroutine for 30 s (service/gcs/bridge/workers.go); threads the Go
// runtime started stay and are not compared.
func (e *ctrEnv) settle(ctx context.Context, idle gauges) (gauges, error) {
	var g gauges
	var err error
	for i := 0; i < 225; i++ {
		if g, err = e.readGauges(ctx); err != nil {
			return g, err
		}
		if g.goroutines <= idle.goroutines && g.fds <= idle.fds && g.mounts == idle.mounts &&
			g.cgroups == idle.cgroups && g.runcDirs == idle.runcDirs && g.zombies == 0 {
			return g, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return g, nil
}

// loadContainers is how many containers BenchmarkLoad runs at once.
const loadContainers = 100

// BenchmarkLoad starts loadContainers containers at once, all created
// concurrently through the bridge, each init with stdin, stdout and stderr
// relayed (`sh -c 'echo ready; cat; echo bye >&2'`), and reads the gcs's
// gauges once all of them are running: RSS, goroutines (DumpStacks),
// threads and fds (at-100-*). Then each gets a line on stdin, which must
// come back, and exits; all are deleted, and the gauges are read again
// once they settled (after-*). Every request must be answered, and
// nothing may be left: no container's mounts, cgroups, runc state or
// zombies, and no more goroutines or fds than when idle.
func BenchmarkLoad(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchLoadOnce(b)
	}
}

func benchLoadOnce(b *testing.B) {
	e := newCtrEnv(b)
	ctx, cancel := ctxFor(10 * time.Minute)
	defer cancel()
	n := newNotifier(ctx, e.c)
	time.Sleep(200 * time.Millisecond)
	idle, err := e.readGauges(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ctrs := make([]*stdioContainer, loadContainers)
	errs := make([]error, loadContainers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctrs[i], errs[i] = e.startStdioContainer(ctx, newContainerID("load"))
		}()
	}
	wg.Wait()
	startAll := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	full, err := e.readGauges(ctx)
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	for i, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.finish(ctx, n, c)
		}()
	}
	wg.Wait()
	stopAll := time.Since(t1)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	after, err := e.settle(ctx, idle)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("idle:   %v", idle)
	b.Logf("at %d: %v", loadContainers, full)
	b.Logf("after:  %v", after)
	b.ReportMetric(float64(full.rss)/(1<<20), "at-100-RSS-MiB")
	b.ReportMetric(float64(full.goroutines), "at-100-goroutines")
	b.ReportMetric(float64(full.threads), "at-100-threads")
	b.ReportMetric(float64(full.fds), "at-100-fds")
	b.ReportMetric(float64(idle.rss)/(1<<20), "idle-RSS-MiB")
	b.ReportMetric(float64(after.rss)/(1<<20), "after-RSS-MiB")
	b.ReportMetric(float64(after.goroutines-idle.goroutines), "after-goroutines-delta")
	b.ReportMetric(float64(after.fds-idle.fds), "after-fds-delta")
	b.ReportMetric(float64(after.threads-idle.threads), "after-threads-delta")
	b.ReportMetric(startAll.Seconds(), "start-all-s")
	b.ReportMetric(stopAll.Seconds(), "stop-all-s")
	if after.goroutines > idle.goroutines || after.fds > idle.fds || after.mounts != idle.mounts ||
		after.cgroups != idle.cgroups || after.runcDirs != idle.runcDirs || after.zombies != 0 {
		b.Fatalf("not back to idle:\nidle  %v\nafter %v", idle, after)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.dups) > 0 {
		b.Fatalf("duplicate notifications: %v", n.dups)
	}
}
