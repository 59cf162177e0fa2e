package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/gcstest"
	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
	"github.com/opengcs/opengcs/service/gcs/transport"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, g *gcstest.GCS) *hostclient.Client {
	t.Helper()
	c, err := g.Connect(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNegotiateCapabilities(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c, err := g.Accept(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Negotiate(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != 4 {
		t.Fatalf("version %d", resp.Version)
	}
	want := prot.GcsCapabilities{
		SupportedSchemaVersions: []prot.SchemaVersion{{Major: 2, Minor: 1}},
		RuntimeOsType:           "Linux",
		GuestDefinedCapabilities: prot.GcsGuestCapabilities{
			NamespaceAddRequestSupported: true, SignalProcessSupported: true,
			DumpStacksSupported: true, DeleteContainerStateSupported: true,
		},
	}
	if !reflect.DeepEqual(resp.Capabilities, want) {
		t.Fatalf("capabilities %+v, want %+v", resp.Capabilities, want)
	}
	// A second NegotiateProtocol on the same connection is not registered.
	_, err = c.Negotiate(ctxT(t, 10*time.Second))
	if hr := hostclient.ResultOf(err); hr != prot.HrNotImpl {
		t.Fatalf("second negotiate: %v (hr %s), want E_NOTIMPL", err, hr)
	}
}

func TestNegotiateVersionRange(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c, err := g.Accept(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := prot.NegotiateProtocol{MessageBase: prot.MessageBase{ActivityID: prot.NullActivityID}, MinimumVersion: 5, MaximumVersion: 7}
	err = c.Call(ctxT(t, 10*time.Second), prot.ComputeSystemNegotiateProtocolV1, &req, &prot.NegotiateProtocolResponse{})
	if hr := hostclient.ResultOf(err); hr != prot.HrVmcomputeUnsupportedProtocolVersion {
		t.Fatalf("got %v, want unsupported protocol version", err)
	}
	// The connection is still un-negotiated and usable.
	if _, err := c.Negotiate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("negotiate after failed attempt: %v", err)
	}
}

func TestRequestBeforeNegotiation(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c, err := g.Accept(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.DumpStacks(ctxT(t, 10*time.Second))
	if hr := hostclient.ResultOf(err); hr != prot.HrNotImpl {
		t.Fatalf("DumpStacks before negotiation: %v, want E_NOTIMPL", err)
	}
	if _, err := c.Negotiate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	stacks, err := c.DumpStacks(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) == 0 || len(stacks) > prot.MaxHostMessageSize {
		t.Fatalf("stack dump of %d bytes", len(stacks))
	}
}

func TestWithoutV4EverythingIsNotImplemented(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{Args: []string{"-v4=false"}})
	c, err := g.Accept(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Negotiate(ctxT(t, 10*time.Second))
	if hr := hostclient.ResultOf(err); hr != prot.HrNotImpl {
		t.Fatalf("negotiate without -v4: %v, want E_NOTIMPL", err)
	}
}

func TestUnknownAndUnsupportedTypes(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c := connect(t, g)
	for _, typ := range []prot.MessageIdentifier{
		prot.ComputeSystemUpdateContainerV1,
		prot.ComputeSystemLifecycleNotifyV1,
		prot.ComputeServiceModifySettingsV1,
		0x10107701, // an identifier no peer defines
		0x1FFFFFFF,
	} {
		t.Run(typ.String(), func(t *testing.T) {
			req := prot.MessageBase{ContainerID: prot.NullContainerID, ActivityID: prot.NullActivityID}
			// The client checks that the response type is the formula's.
			err := c.Call(ctxT(t, 10*time.Second), typ, &req, &prot.MessageResponseBase{})
			if hr := hostclient.ResultOf(err); hr != prot.HrNotImpl {
				t.Fatalf("%s: %v, want E_NOTIMPL", typ, err)
			}
		})
	}
}

func TestMalformedJSON(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c := connect(t, g)
	for _, body := range []string{`{`, `[]`, `{"ContainerId": 5}`, "\x00\x01", ""} {
		err := c.CallRaw(ctxT(t, 10*time.Second), prot.ComputeSystemDumpStacksV1, []byte(body), &prot.DumpStacksResponse{})
		var re *hostclient.RPCError
		if !errors.As(err, &re) || re.Result != prot.HrVmcomputeInvalidJSON {
			t.Fatalf("body %q: %v, want InvalidJSON", body, err)
		}
		if re.Message == "" || len(re.Records) != 1 || re.Records[0].Result != prot.HrVmcomputeInvalidJSON.Int32() || re.Records[0].ModuleName != "gcs" {
			t.Fatalf("body %q: error record %+v", body, re.Records)
		}
	}
	if !strings.Contains(mustErr(t, c.CallRaw(ctxT(t, 10*time.Second), prot.ComputeSystemDumpStacksV1, []byte("{"), nil)), "DumpStacks") {
		t.Fatal("error message does not name the request")
	}
}

func mustErr(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error")
	}
	return err.Error()
}

// badFrameCases each break the connection; the gcs must survive, redial
// and serve a renegotiated connection.
func TestBadFramesDropConnectionOnly(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	cases := []struct {
		name string
		data []byte
		// close after writing (truncated frames need the peer to go away)
		close bool
	}{
		{"size-below-header", header(prot.ComputeSystemDumpStacksV1, 8, 1), false},
		{"size-zero", header(prot.ComputeSystemDumpStacksV1, 0, 2), false},
		{"size-huge", header(prot.ComputeSystemDumpStacksV1, 0xFFFFFFF0, 3), false},
		{"truncated-body", append(header(prot.ComputeSystemDumpStacksV1, 200, 4), []byte(`{"ContainerId":`)...), true},
		{"truncated-header", []byte{1, 2, 3, 4, 5}, true},
	}
	connect(t, g).Close()
	rssBefore, err := g.RSS()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, g)
			if err := c.WriteRaw(tc.data); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				c.Close()
			} else {
				select {
				case <-c.Done():
				case <-time.After(20 * time.Second):
					t.Fatal("gcs did not drop the connection")
				}
			}
			if !g.Alive() {
				t.Fatal("gcs died")
			}
			c2 := connect(t, g) // redialled and renegotiated
			if _, err := c2.DumpStacks(ctxT(t, 10*time.Second)); err != nil {
				t.Fatalf("after %s: %v", tc.name, err)
			}
			c2.Close()
		})
	}
	rssAfter, err := g.RSS()
	if err != nil {
		t.Fatal(err)
	}
	// A 4 GiB announced frame must not have been allocated.
	if rssAfter-rssBefore > 64<<20 {
		t.Fatalf("RSS grew from %d to %d bytes", rssBefore, rssAfter)
	}
}

func header(t prot.MessageIdentifier, size uint32, id uint64) []byte {
	b := make([]byte, prot.HeaderSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(t))
	binary.LittleEndian.PutUint32(b[4:], size)
	binary.LittleEndian.PutUint64(b[8:], id)
	return b
}

func TestConcurrentRequests(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{})
	c := connect(t, g)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			// A stack dump grows with the goroutines in flight, so a few
			// of them among many cheap requests keep the test about
			// ordering and ids rather than the machine's speed; the
			// deadline only guards against a hang.
			if i%20 == 0 {
				_, err = c.DumpStacks(ctxT(t, 180*time.Second))
			} else {
				// An unknown-container wait fails fast with its own code.
				_, err = c.WaitForProcess(ctxT(t, 180*time.Second), fmt.Sprintf("nosuch%d", i), 1, 0)
				if hostclient.ResultOf(err) == prot.HrVmcomputeSystemNotFound {
					err = nil
				}
			}
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The client fails the connection on any id mismatch; it must still be up.
	if err := c.Err(); err != nil {
		t.Fatalf("connection: %v", err)
	}
}

// TestListenMode has the host connect in (-listen), as on hypervisors whose
// host side dials the guest; after a drop the host can connect again.
func TestListenMode(t *testing.T) {
	g := gcstest.Start(t, gcstest.Options{Listen: true})
	for round := 0; round < 2; round++ {
		var conn net.Conn
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := g.Transport.Dial(ctxT(t, 5*time.Second), transport.BridgePort)
			if err == nil {
				conn = c
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("could not connect to the listening gcs: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		c := hostclient.New(conn)
		if _, err := c.Negotiate(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("round %d: negotiate: %v", round, err)
		}
		if _, err := c.DumpStacks(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c.Close()
	}
}

// TestBridgeOverStdio serves the bridge on the gcs's own stdin and stdout
// (-use-inouterr), the debugging path and the one the VM test uses on a
// virtio-serial port.
func TestBridgeOverStdio(t *testing.T) {
	gcs, err := gcstest.Binary("gcs")
	if err != nil {
		t.Fatal(err)
	}
	runc, err := testutil.RuncBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("/opengcs-test-stdio-%d", time.Now().UnixNano())
	t.Cleanup(func() { gcstest.RemoveCgroups(prefix) })
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
		"--", "/bin/sh", "-c", `mount -t tmpfs tmpfs /run && exec "$0" "$@"`,
		gcs, "-v4", "-use-inouterr", "-runc", runc, "-cgroup-prefix", prefix, "-disable-time-sync", "-loglevel", "info", "-log-format", "json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if _, bad, _ := logging.Check(strings.NewReader(logs.String())); len(bad) > 0 {
			t.Errorf("gcs log lines that are not JSON entries:\n%s", strings.Join(bad, "\n"))
		}
		if t.Failed() {
			t.Logf("gcs log:\n%s", logs.String())
		}
	})
	c := hostclient.New(&transport.StdioConn{R: stdout, W: stdin})
	defer c.Close()
	resp, err := c.Negotiate(ctxT(t, 30*time.Second))
	if err != nil || resp.Capabilities.RuntimeOsType != "Linux" {
		t.Fatalf("negotiate over stdio: %+v, %v", resp, err)
	}
	if _, err := c.DumpStacks(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}
