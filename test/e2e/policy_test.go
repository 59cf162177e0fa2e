//go:build rego

package e2e

import (
	"bufio"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/Microsoft/hcsshim/ext4/dmverity"
	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	"github.com/Microsoft/hcsshim/pkg/securitypolicy"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
	"github.com/opengcs/opengcs/internal/testutil"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// These tests drive confidential mode through the real bin/gcs (built with
// -tags rego): policies are built with hcsshim's securitypolicy Go API and
// marshalled to Rego, as a host's tooling does.

const testPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// externalEnv is the environment the marshalled external processes require.
var externalEnv = map[string]string{"PATH": strings.TrimPrefix(testPath, "PATH=")}

// policyOpts are the knobs of a test policy.
type policyOpts struct {
	allowAll   bool
	containers []*securitypolicy.Container
	externals  []securitypolicy.ExternalProcessConfig
	fragments  []securitypolicy.FragmentConfig
	// allow* are the policy's global switches.
	properties, dumpStacks, logging, hostNetwork, unencryptedScratch bool
}

// regoPolicy marshals o to base64-encoded Rego.
func regoPolicy(t *testing.T, o policyOpts) string {
	t.Helper()
	text, err := securitypolicy.MarshalPolicy("rego", o.allowAll, o.containers, o.externals, o.fragments,
		o.properties, o.dumpStacks, o.logging, o.hostNetwork, false, o.unencryptedScratch, false, false)
	if err != nil {
		t.Fatalf("marshal policy: %v", err)
	}
	return base64.StdEncoding.EncodeToString([]byte(text))
}

// setPolicy sends a SecurityPolicy request.
func (s *storageEnv) setPolicy(enforcer, encoded, uvmReference string) error {
	return s.modify(prot.RequestTypeAdd, prot.ResourceSecurityPolicy, &prot.ConfidentialOptions{
		EnforcerType: enforcer, EncodedSecurityPolicy: encoded, EncodedUVMReference: uvmReference,
	})
}

// denied asserts that err is a policy refusal as the reference reports it:
// E_FAIL, text in the message and in the ErrorRecord, and, when reason is
// not empty, the policy decision carried in the message naming reason.
func denied(t *testing.T, what string, err error, text, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allowed, want a policy denial", what)
	}
	var rpc *hostclient.RPCError
	if !asRPC(err, &rpc) {
		t.Fatalf("%s: %v is not a gcs error response", what, err)
	}
	if rpc.Result != prot.HrFail {
		t.Fatalf("%s: HRESULT %s, want E_FAIL: %v", what, rpc.Result, err)
	}
	if !strings.Contains(rpc.Message, text) {
		t.Fatalf("%s: %q does not say %q", what, rpc.Message, text)
	}
	if len(rpc.Records) == 0 || rpc.Records[0].Message != rpc.Message || uint32(rpc.Records[0].Result) != uint32(prot.HrFail) {
		t.Fatalf("%s: error records %+v do not carry the denial", what, rpc.Records)
	}
	if reason == "" {
		return
	}
	decision, derr := securitypolicy.ExtractPolicyDecision(rpc.Message)
	if derr != nil {
		t.Fatalf("%s: no policy decision in %q: %v", what, rpc.Message, derr)
	}
	if !strings.Contains(decision, reason) {
		t.Fatalf("%s: policy decision %s does not give the reason %q", what, decision, reason)
	}
}

func asRPC(err error, out **hostclient.RPCError) bool {
	for err != nil {
		if e, ok := err.(*hostclient.RPCError); ok {
			*out = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// verityLayer is busyboxLayer with a dm-verity hash tree appended (as a
// confidential host ships layers); it returns the image and its root hash,
// read back with hcsshim's own dmverity reader.
func verityLayer(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	img := layerImage(t, files, tar2ext4.ConvertWhiteout, tar2ext4.AppendDMVerity, tar2ext4.AppendVhdFooter)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _, err := tar2ext4.Ext4FileSystemSize(f)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dmverity.ReadDMVerityInfo(img, size)
	if err != nil {
		t.Fatal(err)
	}
	return img, info.RootDigest
}

// confSpec is a standalone container spec that a pinned policy can match
// exactly: the reference's default mounts, explicit capabilities.
func confSpec(id string, args ...string) *specs.Spec {
	s := testutil.Spec(args...)
	s.Hostname = ""
	s.Root = &specs.Root{Path: rootfsOf(id)}
	s.Process.Env = []string{testPath, "TERM=xterm"}
	caps := securitypolicy.DefaultUnprivilegedCapabilities()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	s.Mounts = securitypolicy.DefaultCRIMounts()[:7] // without the /sys/fs/cgroup variants
	return s
}

// pinnedContainer is the policy's description of the container confSpec
// builds with args, on the layer with root hash layer.
func pinnedContainer(t *testing.T, layer string, args []string, execs [][]string, signals []syscall.Signal) *securitypolicy.Container {
	t.Helper()
	caps := securitypolicy.DefaultUnprivilegedCapabilities()
	var ex []securitypolicy.ExecProcessConfig
	for _, e := range execs {
		ex = append(ex, securitypolicy.ExecProcessConfig{Command: e})
	}
	c, err := securitypolicy.CreateContainerPolicy(args, []string{layer},
		[]securitypolicy.EnvRuleConfig{
			{Strategy: securitypolicy.EnvVarRuleString, Rule: testPath, Required: true},
			{Strategy: securitypolicy.EnvVarRuleRegex, Rule: "TERM=.+"},
		},
		"/", nil, false, ex, signals, true, true,
		securitypolicy.UserConfig{
			UserIDName:   securitypolicy.IDNameConfig{Strategy: securitypolicy.IDNameStrategyAny},
			GroupIDNames: []securitypolicy.IDNameConfig{{Strategy: securitypolicy.IDNameStrategyAny}},
			Umask:        "0022",
		},
		&securitypolicy.CapabilitiesConfig{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: []string{}, Ambient: []string{}},
		"")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// plug plugs img in as SCSI controller 0, LUN lun.
func (s *storageEnv) plug(img string, lun uint8) {
	s.t.Helper()
	s.scsiDisk(0, 2, lun, "sd"+string(rune('a'+lun)), storagetest.Loop(s.t, img, true))
}

// layerDisk mounts the disk at LUN lun read-only at /run/mounts/scsi/m<lun>
// (the path the policy expects).
func (s *storageEnv) layerDisk(lun uint8) (*prot.LCOWMappedVirtualDisk, error) {
	s.t.Helper()
	d := &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m" + string(rune('0'+lun)), Lun: lun, ReadOnly: true, Options: []string{"ro"}}
	return d, s.modify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, d)
}

// overlay mounts the container root of id over layers (with a scratch in
// the bundle when scratch is set).
func (s *storageEnv) overlay(id string, scratch bool, layers ...string) error {
	cl := &prot.LCOWCombinedLayers{ContainerID: id, ContainerRootPath: rootfsOf(id)}
	for _, l := range layers {
		cl.Layers = append(cl.Layers, prot.Layer{Path: l})
	}
	if scratch {
		cl.ScratchPath = scratchOf(id)
	}
	return s.modify(prot.RequestTypeAdd, prot.ResourceCombinedLayers, cl)
}

func (s *storageEnv) removeOverlay(id string) error {
	return s.modify(prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)})
}

// TestPolicyPinnedContainer: a closed-door gcs receives a policy pinning
// one container (layer hash, command, env, mounts, user, capabilities, its
// execs and signals). Everything the policy describes works; each
// enforcement point refuses something else with the policy's reason and
// leaves nothing behind.
func TestPolicyPinnedContainer(t *testing.T) {
	s := newStorageEnvArgs(t, "-initial-policy-stance", "deny")
	good, goodHash := verityLayer(t, map[string]string{"etc/layer-id": "pinned\n"})
	other, _ := verityLayer(t, map[string]string{"etc/layer-id": "other\n"})
	s.plug(good, 1)
	s.plug(other, 2)

	// Closed door: even stack dumps and the first mount are refused.
	_, err := s.c.DumpStacks(ctxErr(t))
	denied(t, "DumpStacks before the policy", err, "getting stack dumps is denied by policy", "")
	_, err = s.layerDisk(1)
	denied(t, "layer mount before the policy", err, "mounting is denied by policy", "")
	if s.guestExists("/run/mounts/scsi/m1") {
		t.Fatal("a denied mount left its mount point")
	}

	cmd := []string{"sh", "-c", "trap 'exit 0' TERM; echo dir=$UVM_SECURITY_CONTEXT_DIR; while :; do sleep 1; done"}
	pol := regoPolicy(t, policyOpts{
		containers: []*securitypolicy.Container{pinnedContainer(t, goodHash, cmd,
			[][]string{{"echo", "exec allowed"}}, []syscall.Signal{syscall.SIGTERM})},
		externals:          []securitypolicy.ExternalProcessConfig{{Command: []string{"true"}, WorkingDir: "/"}},
		properties:         true,
		logging:            true,
		unencryptedScratch: true,
	})
	const uvmRef = "dXZtIHJlZmVyZW5jZQ=="
	if err := s.setPolicy("rego", pol, uvmRef); err != nil {
		t.Fatalf("policy: %v", err)
	}
	denied(t, "second policy", s.setPolicy("rego", pol, ""), "security policy has already been set", "")

	// Device mount: only the pinned layer hash.
	_, err = s.layerDisk(2)
	denied(t, "unpinned layer", err, "denied by policy", "deviceHash not found")
	if s.guestExists("/run/mounts/scsi/m2") {
		t.Fatal("the denied layer left its mount point")
	}
	// Confidential mode, whatever the policy: a layer only with the "ro"
	// option.
	noOpt := &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Lun: 1, ReadOnly: true}
	denied(t, "layer without the ro option", s.modify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, noOpt), `with mount options "": expected "ro"`, "")
	disk, err := s.layerDisk(1)
	if err != nil {
		t.Fatalf("pinned layer: %v", err)
	}
	// RW and block devices, Plan 9: not in this policy.
	rw := &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m7", Lun: 2, EnsureFilesystem: true, Filesystem: "ext4"}
	denied(t, "read-write disk", s.modify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, rw), "denied by policy", "")
	bd := &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/b2", Lun: 2, BlockDev: true}
	denied(t, "block device", s.modify(prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk, bd), "denied by policy", "")
	p9 := &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m3", ShareName: "share", Port: 564}
	denied(t, "plan9 share", s.modify(prot.RequestTypeAdd, prot.ResourceMappedDirectory, p9), "mounting plan9 device at /run/mounts/m3 denied by policy", "")

	// Overlay: only over pinned layers.
	bad := newID(t)
	denied(t, "overlay over an unmounted layer", s.overlay(bad, true, "/run/mounts/scsi/m5"), "overlay creation denied by policy", "")
	if s.guestExists(rootfsOf(bad)) {
		t.Fatal("the denied overlay left its root")
	}

	// Create: a container whose command the policy does not name.
	if err := s.overlay(bad, true, disk.MountPath); err != nil {
		t.Fatalf("overlay: %v", err)
	}
	err = s.c.CreateContainer(ctxErr(t), bad, hostclient.ContainerSettings(bundleOf(bad), scratchOf(bad), confSpec(bad, "sh", "-c", "cat /etc/shadow")))
	denied(t, "unpinned command", err, "container creation denied due to policy", "invalid command")
	s.refusedCreateLeftNothing(bad)
	// Create: the pinned command with an environment variable it does not allow.
	bad2 := newID(t)
	if err := s.overlay(bad2, true, disk.MountPath); err != nil {
		t.Fatal(err)
	}
	sp := confSpec(bad2, cmd...)
	sp.Process.Env = append(sp.Process.Env, "SECRET=hunter2")
	err = s.c.CreateContainer(ctxErr(t), bad2, hostclient.ContainerSettings(bundleOf(bad2), scratchOf(bad2), sp))
	denied(t, "unpinned env", err, "container creation denied due to policy", "invalid env list")
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("the denial carries an environment value")
	}
	s.refusedCreateLeftNothing(bad2)

	// The pinned container runs, with its security context.
	id := newID(t)
	if err := s.overlay(id, true, disk.MountPath); err != nil {
		t.Fatalf("overlay: %v", err)
	}
	if err := s.c.CreateContainer(ctxErr(t), id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), confSpec(id, cmd...))); err != nil {
		t.Fatalf("pinned container: %v", err)
	}
	t.Cleanup(func() {
		_ = s.c.DeleteContainerState(ctxErr(t), id)
	})
	if err := s.c.Start(ctxErr(t), id); err != nil {
		t.Fatal(err)
	}
	init := s.exec(id, nil, false, true, false)
	line, err := bufio.NewReader(init.stdio.Conn(hostclient.StdOut)).ReadString('\n')
	if err != nil {
		t.Fatalf("init output: %v", err)
	}
	line = strings.TrimSpace(line)
	dir, ok := strings.CutPrefix(line, "dir=/security-context-")
	if !ok {
		t.Fatalf("init printed %q, want its UVM_SECURITY_CONTEXT_DIR", line)
	}
	ctxDir := filepath.Join(s.guestPath(rootfsOf(id)), "security-context-"+dir)
	for file, want := range map[string]string{"security-policy-base64": pol, "reference-info-base64": uvmRef} {
		if b, err := os.ReadFile(filepath.Join(ctxDir, file)); err != nil || string(b) != want {
			t.Errorf("security context %s: %q (%v)", file, b, err)
		}
	}

	// While it runs, neither its state, nor its root, nor the layer under
	// it can be removed.
	denied(t, "delete of a running container", s.c.DeleteContainerState(ctxErr(t), id), "denied deleting state of running container", "")
	denied(t, "removal of a running container's root", s.removeOverlay(id), "in use by a running container", "")
	denied(t, "removal of a layer under overlays", s.modify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: disk.MountPath, Lun: 1, ReadOnly: true}), "still used by", "")
	if !s.guestExists(filepath.Join(rootfsOf(id), "etc/layer-id")) {
		t.Fatal("a refused removal took the container's root away")
	}
	denied(t, "overlay of an id that is not 64 hex digits", s.modify(prot.RequestTypeAdd, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerID: "../x", ContainerRootPath: "/run/gcs/c/../x/rootfs", Layers: []prot.Layer{{Path: disk.MountPath}}}), "must be 64 hexadecimal digits", "")

	// Exec: the pinned process runs, others are refused.
	ex := s.exec(id, procArgsEnv("echo", "exec allowed"), false, true, false)
	if out := readAll(t, ex.stdio, hostclient.StdOut); out != "exec allowed\n" {
		t.Fatalf("exec printed %q", out)
	}
	s.wait(id, ex.pid)
	_, err = s.c.ExecuteProcess(ctxErr(t), id, &prot.ProcessParameters{OCIProcess: procArgsEnv("cat", "/etc/shadow")}, prot.ExecuteProcessVsockStdioRelaySettings{})
	denied(t, "unpinned exec", err, "exec in container denied due to policy", "invalid command")

	// External processes: only the pinned one.
	_, err = s.c.ExecuteProcess(ctxErr(t), prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"ls", "/"}, WorkingDirectory: "/"}, prot.ExecuteProcessVsockStdioRelaySettings{})
	denied(t, "unpinned external process", err, "exec is denied due to policy", "invalid command")
	pid, err := s.c.ExecuteProcess(ctxErr(t), prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"true"}, WorkingDirectory: "/", Environment: externalEnv}, prot.ExecuteProcessVsockStdioRelaySettings{})
	if err != nil {
		t.Fatalf("pinned external process: %v", err)
	}
	if code := s.wait(prot.NullContainerID, pid); code != 0 {
		t.Fatalf("external process exit %d", code)
	}

	// Properties allowed, stack dumps not.
	if _, err := s.c.GetProperties(ctxErr(t), id, prot.PtProcessList); err != nil {
		t.Fatalf("GetProperties: %v", err)
	}
	_, err = s.c.DumpStacks(ctxErr(t))
	denied(t, "DumpStacks", err, "dump stacks denied due to policy", "")

	// Signals: SIGKILL is not in the policy, SIGTERM is.
	denied(t, "SIGKILL", s.c.SignalProcess(ctxErr(t), id, init.pid, int32(syscall.SIGKILL)), "denied by policy", "")
	if err := s.c.SignalProcess(ctxErr(t), id, init.pid, int32(syscall.SIGTERM)); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if code := s.wait(id, init.pid); code != 0 {
		t.Fatalf("init exit %d after SIGTERM", code)
	}
	s.notification(id)
	// Shutdown is allowed (the policy started the container); the
	// container has already stopped, which is a success.
	if err := s.c.Shutdown(ctxErr(t), id, true); err != nil {
		t.Fatalf("shutdown of the stopped container: %v", err)
	}

	// Teardown is allowed in the order a host does it.
	if err := s.removeOverlay(id); err != nil {
		t.Fatalf("remove overlay: %v", err)
	}
	if err := s.c.DeleteContainerState(ctxErr(t), id); err != nil {
		t.Fatal(err)
	}
	s.mustModify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: disk.MountPath, Lun: 1, ReadOnly: true})
	// A second unmount of the same target is refused by the policy (it is
	// no longer mounted as far as the policy knows).
	denied(t, "second unmount", s.modify(prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: disk.MountPath, Lun: 1, ReadOnly: true}), "denied by policy", "")
}

// procArgsEnv is an exec'd process with the env a pinned policy allows.
func procArgsEnv(args ...string) *specs.Process {
	caps := securitypolicy.DefaultUnprivilegedCapabilities()
	return &specs.Process{Args: args, Cwd: "/", Env: []string{testPath, "TERM=xterm"}, NoNewPrivileges: true,
		Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}
}

// TestPolicyDenyAll: a Rego policy that allows nothing refuses every
// enforcement point, including runtime logging (the log stream stops).
func TestPolicyDenyAll(t *testing.T) {
	s := newStorageEnvArgs(t)
	img, _ := verityLayer(t, nil)
	s.plug(img, 1)
	if err := s.setPolicy("rego", regoPolicy(t, policyOpts{}), ""); err != nil {
		t.Fatalf("policy: %v", err)
	}
	logSize := fileSize(t, s.g.LogPath)

	_, err := s.layerDisk(1)
	denied(t, "layer", err, "mounting scsi device controller 0 lun 1 onto /run/mounts/scsi/m1 denied by policy", "deviceHash not found")
	id := newID(t)
	denied(t, "overlay with scratch", s.overlay(id, true, "/run/mounts/scsi/m1"), "scratch mounting denied by policy", "unencrypted scratch not allowed")
	denied(t, "overlay", s.overlay(id, false, "/run/mounts/scsi/m1"), "overlay creation denied by policy", "no matching containers for overlay")
	err = s.c.CreateContainer(ctxErr(t), id, hostclient.ContainerSettings(bundleOf(id), scratchOf(id), confSpec(id, "true")))
	denied(t, "create", err, "container creation denied due to policy", "")
	_, err = s.c.ExecuteProcess(ctxErr(t), prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"true"}}, prot.ExecuteProcessVsockStdioRelaySettings{})
	denied(t, "external process", err, "exec is denied due to policy", "invalid command")
	// Signalling utility VM processes, which opengcs allows beyond the
	// reference, is the reference's 0xC037010E under a policy.
	if err := s.c.SignalProcess(ctxErr(t), prot.NullContainerID, 1, 9); hostclient.ResultOf(err) != prot.HrVmcomputeSystemNotFound {
		t.Errorf("SignalProcess on the utility VM under a policy: %v, want %s", err, prot.HrVmcomputeSystemNotFound)
	}
	_, err = s.c.DumpStacks(ctxErr(t))
	denied(t, "DumpStacks", err, "dump stacks denied due to policy", "dump_stacks")
	_, err = s.c.GetProperties(ctxErr(t), id, prot.PtProcessList)
	denied(t, "GetProperties", err, "get properties denied due to policy", "get_properties")
	// Every removal: the policy knows of nothing mounted.
	for _, tc := range []struct {
		what, resource string
		settings       any
		text           string
	}{
		{"read-only disk removal", prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Lun: 1, ReadOnly: true}, "unmounting scsi device at /run/mounts/scsi/m1 denied by policy"},
		{"read-write disk removal", prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Lun: 1}, "unmounting scsi device at /run/mounts/scsi/m1 denied by policy"},
		{"block device removal", prot.ResourceMappedVirtualDisk, &prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/b1", Lun: 1, BlockDev: true}, "removing blockdev symlink at /run/mounts/scsi/b1 denied by policy"},
		{"VPMem removal", prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{DeviceNumber: 0, MountPath: "/run/layers/p0"}, "unmounting pmem device from /run/layers/p0 denied by policy"},
		{"plan9 removal", prot.ResourceMappedDirectory, &prot.LCOWMappedDirectory{MountPath: "/run/mounts/m3"}, "unmounting plan9 device at /run/mounts/m3 denied by policy"},
		{"overlay removal", prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{ContainerRootPath: rootfsOf(id)}, "overlay removal denied by policy"},
	} {
		denied(t, tc.what, s.modify(prot.RequestTypeRemove, tc.resource, tc.settings), tc.text, "")
	}
	storagetest.BlockNode(t, s.roots.DevPath("pmem0"), storagetest.Loop(t, img, true))
	denied(t, "VPMem layer", s.modify(prot.RequestTypeAdd, prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{DeviceNumber: 0, MountPath: "/run/layers/p0"}),
		"mounting pmem device 0 onto /run/layers/p0 denied by policy", "deviceHash not found")

	// Logging is denied: nothing of the above reached the log.
	if got := fileSize(t, s.g.LogPath); got != logSize {
		t.Errorf("the log grew from %d to %d bytes under a policy that denies runtime logging", logSize, got)
	}
}

// TestPolicyOpenDoorAndAllowAll: the open-door policy (no policy text) and
// a Rego allow-all policy both let an ordinary container run.
func TestPolicyOpenDoorAndAllowAll(t *testing.T) {
	for _, tc := range []struct {
		name, enforcer, policy string
	}{
		{"open door", "open_door", ""},
		{"allow all", "rego", regoPolicy(t, policyOpts{allowAll: true})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := &storageEnv{env: e}
			if err := s.setPolicy(tc.enforcer, tc.policy, ""); err != nil {
				t.Fatalf("policy: %v", err)
			}
			denied(t, "second policy", s.setPolicy(tc.enforcer, tc.policy, ""), "security policy has already been set", "")
			if err := e.runFull(newID(t)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.c.DumpStacks(ctxErr(t)); err != nil {
				t.Fatalf("DumpStacks: %v", err)
			}
		})
	}
}

// TestPolicyDenyStanceOpenDoor: the deny stance refuses until a policy
// arrives, even an open-door one.
func TestPolicyDenyStanceOpenDoor(t *testing.T) {
	s := newStorageEnvArgs(t, "-initial-policy-stance", "deny")
	id := newID(t)
	s.layer = t.TempDir()
	denied(t, "overlay before the policy", s.overlay(id, true, s.layer), "denied by the policy", "")
	_, err := s.c.ExecuteProcess(ctxErr(t), prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"true"}}, prot.ExecuteProcessVsockStdioRelaySettings{})
	denied(t, "external process before the policy", err, "starting additional processes in uvm is denied by policy", "")
	if err := s.setPolicy("open_door", "", ""); err != nil {
		t.Fatalf("open door: %v", err)
	}
	if _, err := s.c.DumpStacks(ctxErr(t)); err != nil {
		t.Fatalf("DumpStacks after the open door: %v", err)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// refusedCreateLeftNothing checks what a refused Create of id left: no
// config, network files or runc state (assertNoTrace), then removes the
// overlay and the scratch directory the host made for it.
func (s *storageEnv) refusedCreateLeftNothing(id string) {
	s.t.Helper()
	s.assertNoTrace(s.t, id, id)
	if err := s.removeOverlay(id); err != nil {
		s.t.Fatalf("remove overlay of %s: %v", id, err)
	}
	if err := os.RemoveAll(s.guestPath(bundleOf(id))); err != nil {
		s.t.Fatal(err)
	}
}
