package handlers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

const (
	cid1 = "c0ffee0000000000000000000000000000000000000000000000000000000001"
	cid2 = "c0ffee0000000000000000000000000000000000000000000000000000000002"
)

// TestGoldenExamples sends every golden request example of
// service/gcs/prot/testdata/golden (docs/protocol.md, "Requests";
// docs/resources.md, "Resource types") and checks the Guest call it turns
// into and the exact response body.
func TestGoldenExamples(t *testing.T) {
	mvd := `{"MountPath":"/run/mounts/scsi/m1","Lun":2,"ReadOnly":true,"Options":["ro"]}`
	tests := []struct {
		name     string
		typ      prot.MessageIdentifier
		body     []byte
		want     []call
		response string // golden name or literal; "" = base success
	}{
		{"create", prot.ComputeSystemCreateV1, golden(t, "create_request"), []call{{Method: "CreateContainer", ID: cid1, Settings: &prot.VMHostedContainerSettingsV2{
			SchemaVersion: prot.SchemaVersion{Major: 2, Minor: 1},
			OCIBundlePath: "/run/gcs/c/" + cid1,
			OCISpecification: &specs.Spec{
				Version: "1.1.0",
				Process: &specs.Process{User: specs.User{UID: 65535, GID: 65535}, Args: []string{"/pause"},
					Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cwd: "/"},
				Root:        &specs.Root{Path: "/run/gcs/c/" + cid1 + "/rootfs", Readonly: true},
				Hostname:    "mypod",
				Mounts:      []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}},
				Annotations: map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": cid1},
				Linux: &specs.Linux{
					Resources:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: func() *uint64 { v := uint64(2); return &v }()}},
					Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}},
				},
				Windows: &specs.Windows{Network: &specs.WindowsNetwork{NetworkNamespace: "3f1d3c3e-9a4b-4c8e-8f59-1b2f5a7e9d10"}},
			},
			ScratchDirPath: "/run/gcs/c/" + cid1 + "/scratch/" + cid1,
		}}}, "create_response"},
		{"start", prot.ComputeSystemStartV1, golden(t, "start_request"), nil, ""},
		{"shutdown graceful", prot.ComputeSystemShutdownGracefulV1, golden(t, "shutdown_request"), []call{{Method: "ShutdownContainer", ID: cid2, Graceful: true}}, ""},
		{"shutdown forced", prot.ComputeSystemShutdownForcedV1, golden(t, "shutdown_request"), []call{{Method: "ShutdownContainer", ID: cid2}}, ""},
		{"delete", prot.ComputeSystemDeleteContainerStateV1, golden(t, "delete_request"), []call{{Method: "DeleteContainerState", ID: cid2}}, ""},
		{"execute init", prot.ComputeSystemExecuteProcessV1, golden(t, "execute_init_request"), []call{{Method: "ExecuteProcess", ID: cid2,
			Params: &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true, CreateStdErrPipe: true},
			Ports:  prot.ExecuteProcessVsockStdioRelaySettings{StdIn: 1073741825, StdOut: 1073741826, StdErr: 1073741827}}}, "execute_response"},
		{"execute exec tty", prot.ComputeSystemExecuteProcessV1, golden(t, "execute_exec_tty_request"), []call{{Method: "ExecuteProcess", ID: cid2,
			Params: &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true, OCIProcess: &specs.Process{
				Terminal: true, Args: []string{"/bin/sh"}, Env: []string{"PATH=/usr/bin:/bin", "TERM=xterm"}, Cwd: "/"}},
			Ports: prot.ExecuteProcessVsockStdioRelaySettings{StdIn: 1073741828, StdOut: 1073741829}}}, "execute_response"},
		{"execute external", prot.ComputeSystemExecuteProcessV1, golden(t, "execute_external_request"), []call{{Method: "ExecuteProcess", ID: prot.NullContainerID,
			Params: &prot.ProcessParameters{
				CommandArgs:      []string{"/bin/install-drivers", "/run/drivers/5c1f0b7e-2d3a-5e4f-9a8b-7c6d5e4f3a2b", "/run/mounts/scsi/m3"},
				WorkingDirectory: "/", Environment: map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				CreateStdErrPipe: true},
			Ports: prot.ExecuteProcessVsockStdioRelaySettings{StdErr: 1073741830}}}, "execute_response"},
		{"wait infinite", prot.ComputeSystemWaitForProcessV1, golden(t, "wait_request"), []call{{Method: "WaitForProcess", ID: cid2, PID: 312, Timeout: -1}}, "wait_response"},
		{"wait poll", prot.ComputeSystemWaitForProcessV1, []byte(`{"ContainerId":"c","ActivityId":"","ProcessId":9,"TimeoutInMs":0}`), []call{{Method: "WaitForProcess", ID: "c", PID: 9, Timeout: 0}},
			`{"Result":0,"ExitCode":137}`},
		{"wait 50ms", prot.ComputeSystemWaitForProcessV1, []byte(`{"ContainerId":"c","ProcessId":9,"TimeoutInMs":50}`), []call{{Method: "WaitForProcess", ID: "c", PID: 9, Timeout: 50 * time.Millisecond}},
			`{"Result":0,"ExitCode":137}`},
		{"signal", prot.ComputeSystemSignalProcessV1, golden(t, "signal_request"), []call{{Method: "SignalProcess", ID: cid2, PID: 312, Signal: 15}}, ""},
		{"plain kill", prot.ComputeSystemSignalProcessV1, []byte(`{"ContainerId":"c","ProcessId":4}`), []call{{Method: "SignalProcess", ID: "c", PID: 4, Signal: 0}}, `{"Result":0}`},
		{"resize", prot.ComputeSystemResizeConsoleV1, golden(t, "resize_request"), []call{{Method: "ResizeConsole", ID: cid2, PID: 312, Height: 40, Width: 120}}, ""},
		{"properties", prot.ComputeSystemGetPropertiesV1, golden(t, "properties_request"), []call{{Method: "GetProperties", ID: cid2,
			Query: &prot.PropertyQuery{PropertyTypes: []prot.PropertyType{prot.PtProcessList}}}}, "properties_response"},
		{"properties empty query", prot.ComputeSystemGetPropertiesV1, []byte(`{"ContainerId":"c","Query":""}`), []call{{Method: "GetProperties", ID: "c", Query: &prot.PropertyQuery{}}},
			`{"Result":0,"Properties":"{\"ProcessList\":[{\"ProcessId\":312},{\"ProcessId\":401}]}"}`},
		{"modify", prot.ComputeSystemModifySettingsV1, golden(t, "modify_request"), []call{{Method: "ModifySettings", ID: prot.NullContainerID,
			Modify: &prot.ModificationRequest{RequestType: "Add", ResourceType: "MappedVirtualDisk", Settings: json.RawMessage(mvd)}}}, ""},
		{"modify defaults to Add", prot.ComputeSystemModifySettingsV1, []byte(`{"ContainerId":"c","Request":{"ResourceType":"VPCIDevice","Settings":{"VMBusGUID":"g"}}}`),
			[]call{{Method: "ModifySettings", ID: "c", Modify: &prot.ModificationRequest{RequestType: "Add", ResourceType: "VPCIDevice", Settings: json.RawMessage(`{"VMBusGUID":"g"}`)}}}, `{"Result":0}`},
		{"modify without settings", prot.ComputeSystemModifySettingsV1, golden(t, "res_podmem_update"),
			[]call{{Method: "ModifySettings", ID: prot.NullContainerID, Modify: &prot.ModificationRequest{RequestType: "Update", ResourceType: "PodCgroupMemoryLimit"}}}, ""},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			r := h.roundTrip(tc.typ, tc.body)
			want := tc.response
			switch {
			case want == "":
				want = `{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000"}`
			case !strings.HasPrefix(want, "{"):
				want = string(bytes.TrimSpace(golden(t, want)))
			}
			if string(r.Body) != want {
				t.Errorf("response\n got %s\nwant %s", r.Body, want)
			}
			h.b.Wait()
			if got := h.g.takeCalls(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("guest calls\n got %s\nwant %s", describe(got), describe(tc.want))
			}
		})
	}
}

// TestResourceExamplesPassThrough: every ModifySettings example reaches
// the guest with its envelope and Settings intact.
func TestResourceExamplesPassThrough(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"res_mvd_scratch_add", "res_mvd_remove", "res_scsi_remove", "res_vpmem_add", "res_mapdir_add",
		"res_layers_add", "res_layers_remove", "res_network_add", "res_network_remove", "res_vpci_add", "res_constraints_update"} {
		t.Run(name, func(t *testing.T) {
			h.t = t
			body := golden(t, name)
			var want prot.ContainerModifySettings
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatal(err)
			}
			if r := h.roundTrip(prot.ComputeSystemModifySettingsV1, body); r.Result != 0 {
				t.Fatalf("%s", r.Body)
			}
			h.b.Wait()
			calls := h.g.takeCalls()
			if len(calls) != 1 || calls[0].ID != want.ContainerID || !reflect.DeepEqual(calls[0].Modify, &want.Request) {
				t.Fatalf("calls %s", describe(calls))
			}
		})
	}
}

// TestInvalidRequests: decode failures are InvalidJSON and never reach the
// guest; UVM-only rules are enforced before the guest is called.
func TestInvalidRequests(t *testing.T) {
	spec := `{"ociVersion":"1.1.0"}`
	cfg := func(s string) []byte {
		b, _ := json.Marshal(prot.ContainerCreate{MessageBase: prot.MessageBase{ContainerID: "c"}, ContainerConfig: s})
		return b
	}
	exec := func(p string) []byte {
		b, _ := json.Marshal(prot.ContainerExecuteProcess{MessageBase: prot.MessageBase{ContainerID: "c"}, Settings: prot.ExecuteProcessSettings{ProcessParameters: p}})
		return b
	}
	tests := []struct {
		name   string
		typ    prot.MessageIdentifier
		body   []byte
		result prot.HResult
	}{
		{"create schema 2.0", prot.ComputeSystemCreateV1, cfg(`{"SchemaVersion":{"Major":2,"Minor":0},"OciSpecification":` + spec + `}`), prot.HrVmcomputeInvalidJSON},
		{"create schema 1.9", prot.ComputeSystemCreateV1, cfg(`{"SchemaVersion":{"Major":1,"Minor":9},"OciSpecification":` + spec + `}`), prot.HrVmcomputeInvalidJSON},
		{"create without spec", prot.ComputeSystemCreateV1, cfg(`{"SchemaVersion":{"Major":2,"Minor":1}}`), prot.HrVmcomputeInvalidJSON},
		{"create empty config", prot.ComputeSystemCreateV1, cfg(""), prot.HrVmcomputeInvalidJSON},
		{"create config not JSON", prot.ComputeSystemCreateV1, cfg("SchemaVersion=2.1"), prot.HrVmcomputeInvalidJSON},
		{"create config as object", prot.ComputeSystemCreateV1, []byte(`{"ContainerId":"c","ContainerConfig":{"SchemaVersion":{"Major":2,"Minor":1}}}`), prot.HrVmcomputeInvalidJSON},
		{"exec empty parameters", prot.ComputeSystemExecuteProcessV1, exec(""), prot.HrVmcomputeInvalidJSON},
		{"exec parameters not JSON", prot.ComputeSystemExecuteProcessV1, exec("/bin/sh"), prot.HrVmcomputeInvalidJSON},
		{"exec bad OciProcess", prot.ComputeSystemExecuteProcessV1, exec(`{"OciProcess":{"args":"sh"}}`), prot.HrVmcomputeInvalidJSON},
		{"wait negative pid", prot.ComputeSystemWaitForProcessV1, []byte(`{"ContainerId":"c","ProcessId":-1}`), prot.HrVmcomputeInvalidJSON},
		{"signal bad options", prot.ComputeSystemSignalProcessV1, []byte(`{"ContainerId":"c","ProcessId":1,"Options":[15]}`), prot.HrVmcomputeInvalidJSON},
		{"resize too wide", prot.ComputeSystemResizeConsoleV1, []byte(`{"ContainerId":"c","ProcessId":1,"Width":70000}`), prot.HrVmcomputeInvalidJSON},
		{"properties bad query", prot.ComputeSystemGetPropertiesV1, []byte(`{"ContainerId":"c","Query":"ProcessList"}`), prot.HrVmcomputeInvalidJSON},
		{"properties of the UVM", prot.ComputeSystemGetPropertiesV1, []byte(`{"ContainerId":"00000000-0000-0000-0000-000000000000","Query":""}`), prot.HrFail},
		{"modify request as string", prot.ComputeSystemModifySettingsV1, []byte(`{"ContainerId":"c","Request":"{}"}`), prot.HrVmcomputeInvalidJSON},
	}
	for _, typ := range []prot.MessageIdentifier{prot.ComputeSystemCreateV1, prot.ComputeSystemStartV1, prot.ComputeSystemShutdownGracefulV1,
		prot.ComputeSystemShutdownForcedV1, prot.ComputeSystemExecuteProcessV1, prot.ComputeSystemWaitForProcessV1, prot.ComputeSystemSignalProcessV1,
		prot.ComputeSystemResizeConsoleV1, prot.ComputeSystemGetPropertiesV1, prot.ComputeSystemModifySettingsV1, prot.ComputeSystemDumpStacksV1,
		prot.ComputeSystemDeleteContainerStateV1} {
		tests = append(tests,
			struct {
				name   string
				typ    prot.MessageIdentifier
				body   []byte
				result prot.HResult
			}{typ.String() + " truncated", typ, []byte(`{"ContainerId":"c"`), prot.HrVmcomputeInvalidJSON},
			struct {
				name   string
				typ    prot.MessageIdentifier
				body   []byte
				result prot.HResult
			}{typ.String() + " id as number", typ, []byte(`{"ContainerId":17}`), prot.HrVmcomputeInvalidJSON})
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			r := h.roundTrip(tc.typ, tc.body)
			if r.Result != tc.result.Int32() {
				t.Fatalf("result %d, want %s: %s", r.Result, tc.result, r.Body)
			}
			if r.ErrorMessage == "" {
				t.Fatalf("no error message: %s", r.Body)
			}
			h.b.Wait()
			if calls := h.g.takeCalls(); len(calls) != 0 {
				t.Fatalf("guest called: %s", describe(calls))
			}
		})
	}
}

// TestGuestErrors: the guest's HRESULT reaches the host; other errors are
// E_FAIL; failures carry base fields only.
func TestGuestErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method string
		typ    prot.MessageIdentifier
		golden string
		err    error
		result prot.HResult
	}{
		{"CreateContainer", prot.ComputeSystemCreateV1, "create_request", prot.Errorf(prot.HrVmcomputeSystemAlreadyExists, "exists"), prot.HrVmcomputeSystemAlreadyExists},
		{"ShutdownContainer", prot.ComputeSystemShutdownGracefulV1, "shutdown_request", prot.Errorf(prot.HrVmcomputeSystemAlreadyStopped, "stopped"), prot.HrVmcomputeSystemAlreadyStopped},
		{"ExecuteProcess", prot.ComputeSystemExecuteProcessV1, "execute_init_request", errors.New("runc start failed"), prot.HrFail},
		{"WaitForProcess", prot.ComputeSystemWaitForProcessV1, "wait_request", prot.Errorf(prot.HrVmcomputeTimeout, "timed out"), prot.HrVmcomputeTimeout},
		{"SignalProcess", prot.ComputeSystemSignalProcessV1, "signal_request", prot.Errorf(prot.HrErrNotFound, "no pid"), prot.HrErrNotFound},
		{"ResizeConsole", prot.ComputeSystemResizeConsoleV1, "resize_request", errors.New("no pty"), prot.HrFail},
		{"GetProperties", prot.ComputeSystemGetPropertiesV1, "properties_request", prot.Errorf(prot.HrVmcomputeSystemNotFound, "no container"), prot.HrVmcomputeSystemNotFound},
		{"ModifySettings", prot.ComputeSystemModifySettingsV1, "modify_request", errors.New("invalid ResourceType"), prot.HrFail},
		{"DeleteContainerState", prot.ComputeSystemDeleteContainerStateV1, "delete_request", prot.Errorf(prot.HrVmcomputeSystemNotFound, "gone"), prot.HrVmcomputeSystemNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			h.t = t
			h.g.mu.Lock()
			h.g.errs = map[string]error{tc.method: tc.err}
			h.g.mu.Unlock()
			r := h.roundTrip(tc.typ, golden(t, tc.golden))
			if r.Result != tc.result.Int32() || r.ErrorMessage != tc.err.Error() {
				t.Fatalf("got %s", r.Body)
			}
			var keys map[string]any
			_ = json.Unmarshal(r.Body, &keys)
			for k := range keys {
				if k != "Result" && k != "ActivityId" && k != "ErrorMessage" && k != "ErrorRecords" {
					t.Fatalf("failure carries %q: %s", k, r.Body)
				}
			}
			h.b.Wait()
			if calls := h.g.takeCalls(); len(calls) != 1 || calls[0].Method != tc.method {
				t.Fatalf("calls %s", describe(calls))
			}
		})
	}
}

// TestShutdownUVM: ShutdownGraceful/Forced of the null container id powers
// off and sends no response; a failed power-off is reported.
func TestShutdownUVM(t *testing.T) {
	for _, typ := range []prot.MessageIdentifier{prot.ComputeSystemShutdownGracefulV1, prot.ComputeSystemShutdownForcedV1} {
		t.Run(typ.String(), func(t *testing.T) {
			h := newHarness(t)
			body := []byte(`{"ContainerId":"00000000-0000-0000-0000-000000000000","ActivityId":"00000000-0000-0000-0000-000000000000"}`)
			h.sendRaw(typ, body)
			if calls := h.waitCalls(1); !reflect.DeepEqual(calls, []call{{Method: "ShutdownUVM"}}) {
				t.Fatalf("calls %s", describe(calls))
			}
			// Nothing is queued for it: the next frame is the next response.
			if r := h.roundTrip(prot.ComputeSystemStartV1, golden(t, "start_request")); r.Result != 0 {
				t.Fatalf("%s", r.Body)
			}
			h.g.mu.Lock()
			h.g.errs = map[string]error{"ShutdownUVM": errors.New("reboot: operation not permitted")}
			h.g.mu.Unlock()
			if r := h.roundTrip(typ, body); r.Result != prot.HrFail.Int32() {
				t.Fatalf("failed power-off: %s", r.Body)
			}
		})
	}
}

// TestWaitAfterCallback: the callback returned by WaitForProcess runs once
// the response is queued, on success and failure.
func TestWaitAfterCallback(t *testing.T) {
	h := newHarness(t)
	h.roundTrip(prot.ComputeSystemWaitForProcessV1, golden(t, "wait_request"))
	h.g.mu.Lock()
	h.g.errs = map[string]error{"WaitForProcess": prot.Errorf(prot.HrVmcomputeTimeout, "timeout")}
	h.g.mu.Unlock()
	h.roundTrip(prot.ComputeSystemWaitForProcessV1, golden(t, "wait_request"))
	h.b.Wait()
	h.g.mu.Lock()
	defer h.g.mu.Unlock()
	if h.g.afterRan != 2 {
		t.Fatalf("after ran %d times, want 2", h.g.afterRan)
	}
}

func TestDumpStacks(t *testing.T) {
	h := newHarness(t)
	r := h.roundTrip(prot.ComputeSystemDumpStacksV1, golden(t, "dumpstacks_request"))
	var resp prot.DumpStacksResponse
	if err := json.Unmarshal(r.Body, &resp); err != nil || resp.Result != 0 {
		t.Fatalf("%.300s (%v)", r.Body, err)
	}
	if !strings.HasPrefix(resp.GuestStacks, "goroutine ") || !strings.Contains(resp.GuestStacks, "handlers") {
		t.Fatalf("stacks %.300q", resp.GuestStacks)
	}
}

// TestLargeProcessList: a process list too large for one frame is cut so
// the response still fits and decodes.
func TestLargeProcessList(t *testing.T) {
	h := newHarness(t)
	list := make([]prot.ProcessDetails, 20000)
	for i := range list {
		list[i].ProcessID = uint32(100000 + i)
	}
	h.g.mu.Lock()
	h.g.props = &prot.PropertiesV2{ProcessList: list, Metrics: json.RawMessage(`{"pids":{"current":20000}}`)}
	h.g.mu.Unlock()
	r := h.roundTrip(prot.ComputeSystemGetPropertiesV1, golden(t, "properties_request"))
	var resp prot.ContainerGetPropertiesResponse
	if err := json.Unmarshal(r.Body, &resp); err != nil || resp.Result != 0 {
		t.Fatalf("%.300s (%v)", r.Body, err)
	}
	var props prot.PropertiesV2
	if err := json.Unmarshal([]byte(resp.Properties), &props); err != nil {
		t.Fatal(err)
	}
	n := len(props.ProcessList)
	if n == 0 || n >= len(list) || !reflect.DeepEqual(props.ProcessList, list[:n]) {
		t.Fatalf("process list of %d entries", n)
	}
	if string(props.Metrics) != `{"pids":{"current":20000}}` {
		t.Fatalf("metrics %s", props.Metrics)
	}
}
