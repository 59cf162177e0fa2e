package prot_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

const (
	cid1 = "c0ffee0000000000000000000000000000000000000000000000000000000001"
	cid2 = "c0ffee0000000000000000000000000000000000000000000000000000000002"
	null = prot.NullContainerID
)

func base(cid string) prot.MessageBase {
	return prot.MessageBase{ContainerID: cid, ActivityID: prot.NullActivityID}
}

func okBase() prot.MessageResponseBase {
	return prot.MessageResponseBase{ActivityID: prot.NullActivityID}
}

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

// hostEncode encodes v the way hosts do: json.Encoder without HTML
// escaping, which appends a newline.
func hostEncode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return buf.Bytes()
}

// guestEncode encodes v the way the GCS does: compact json.Marshal.
func guestEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newOf returns a pointer to a new zero value of the type v points to.
func newOf(v any) any { return reflect.New(reflect.TypeOf(v).Elem()).Interface() }

const createConfig = `{"SchemaVersion":{"Major":2,"Minor":1},"OciBundlePath":"/run/gcs/c/c0ffee0000000000000000000000000000000000000000000000000000000001","OciSpecification":{"ociVersion":"1.1.0","process":{"user":{"uid":65535,"gid":65535},"args":["/pause"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"cwd":"/"},"root":{"path":"/run/gcs/c/c0ffee0000000000000000000000000000000000000000000000000000000001/rootfs","readonly":true},"hostname":"mypod","mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]}],"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-id":"c0ffee0000000000000000000000000000000000000000000000000000000001"},"linux":{"resources":{"cpu":{"shares":2}},"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network"}]},"windows":{"network":{"networkNamespace":"3f1d3c3e-9a4b-4c8e-8f59-1b2f5a7e9d10"}}},"ScratchDirPath":"/run/gcs/c/c0ffee0000000000000000000000000000000000000000000000000000000001/scratch/c0ffee0000000000000000000000000000000000000000000000000000000001"}`

const (
	initParams     = `{"CreateStdInPipe":true,"CreateStdOutPipe":true,"CreateStdErrPipe":true}`
	execTTYParams  = `{"CreateStdInPipe":true,"CreateStdOutPipe":true,"OciProcess":{"terminal":true,"user":{"uid":0,"gid":0},"args":["/bin/sh"],"env":["PATH=/usr/bin:/bin","TERM=xterm"],"cwd":"/"}}`
	externalParams = `{"CommandArgs":["/bin/install-drivers","/run/drivers/5c1f0b7e-2d3a-5e4f-9a8b-7c6d5e4f3a2b","/run/mounts/scsi/m3"],"WorkingDirectory":"/","Environment":{"PATH":"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},"CreateStdErrPipe":true}`
	statistics     = `{"LCOWMetrics":{"pids":{"current":3},"cpu":{"usage":{"total":51234000,"kernel":10000000,"user":40000000},"throttling":{}},"memory":{"cache":409600,"rss":2097152,"usage":{"limit":9223372036854771712,"usage":3100000,"max":3500000},"swap":{},"kernel":{},"kernel_tcp":{}},"blkio":{}}}`
)

// TestGoldenBodies checks every example body in testdata/golden
// (docs/protocol.md, "Requests"): the Go value encodes to exactly the
// example's bytes (host bodies as hosts encode them, trailing newline
// included; guest bodies compact), and the example decodes back into exactly
// the Go value.
func TestGoldenBodies(t *testing.T) {
	tests := []struct {
		golden string
		host   bool // sent by the host (json.Encoder), else by the guest
		value  any
	}{
		{"negotiate_request", true, &prot.NegotiateProtocol{MessageBase: base(""), MinimumVersion: 4, MaximumVersion: 4}},
		{"negotiate_response", false, &prot.NegotiateProtocolResponse{MessageResponseBase: okBase(), Version: 4, Capabilities: prot.LinuxCapabilities()}},
		{"create_request", true, &prot.ContainerCreate{
			MessageBase: prot.MessageBase{ContainerID: cid1, ActivityID: prot.NullActivityID,
				OpenTelemetrySpanContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
			ContainerConfig: createConfig,
		}},
		{"create_response", false, &prot.ContainerCreateResponse{MessageResponseBase: okBase()}},
		{"start_request", true, &prot.MessageBase{ContainerID: cid1, ActivityID: prot.NullActivityID}},
		{"shutdown_request", true, &prot.MessageBase{ContainerID: cid2, ActivityID: prot.NullActivityID,
			OpenTelemetrySpanContext: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}},
		{"delete_request", true, &prot.MessageBase{ContainerID: cid2, ActivityID: prot.NullActivityID}},
		{"execute_init_request", true, &prot.ContainerExecuteProcess{MessageBase: base(cid2), Settings: prot.ExecuteProcessSettings{
			ProcessParameters:       initParams,
			VsockStdioRelaySettings: prot.ExecuteProcessVsockStdioRelaySettings{StdIn: 1073741825, StdOut: 1073741826, StdErr: 1073741827},
		}}},
		{"execute_exec_tty_request", true, &prot.ContainerExecuteProcess{MessageBase: base(cid2), Settings: prot.ExecuteProcessSettings{
			ProcessParameters:       execTTYParams,
			VsockStdioRelaySettings: prot.ExecuteProcessVsockStdioRelaySettings{StdIn: 1073741828, StdOut: 1073741829},
		}}},
		{"execute_external_request", true, &prot.ContainerExecuteProcess{MessageBase: base(null), Settings: prot.ExecuteProcessSettings{
			ProcessParameters:       externalParams,
			VsockStdioRelaySettings: prot.ExecuteProcessVsockStdioRelaySettings{StdErr: 1073741830},
		}}},
		{"execute_response", false, &prot.ContainerExecuteProcessResponse{MessageResponseBase: okBase(), ProcessID: 312}},
		{"wait_request", true, &prot.ContainerWaitForProcess{MessageBase: base(cid2), ProcessID: 312, TimeoutInMs: prot.InfiniteWaitTimeout}},
		{"wait_response", false, &prot.ContainerWaitForProcessResponse{MessageResponseBase: okBase(), ExitCode: 137}},
		{"signal_request", true, &prot.ContainerSignalProcess{MessageBase: base(cid2), ProcessID: 312, Options: &prot.SignalProcessOptions{Signal: 15}}},
		{"resize_request", true, &prot.ContainerResizeConsole{MessageBase: base(cid2), ProcessID: 312, Height: 40, Width: 120}},
		{"properties_request", true, &prot.ContainerGetProperties{MessageBase: base(cid2), Query: `{"PropertyTypes":["ProcessList"]}`}},
		{"properties_response", false, &prot.ContainerGetPropertiesResponse{MessageResponseBase: okBase(),
			Properties: `{"ProcessList":[{"ProcessId":312},{"ProcessId":401}]}`}},
		{"properties_statistics", false, &prot.PropertiesV2{Metrics: json.RawMessage(statistics[len(`{"LCOWMetrics":`) : len(statistics)-1])}},
		{"modify_request", true, &prot.ContainerModifySettings{MessageBase: base(null), Request: prot.ModificationRequest{
			RequestType: prot.RequestTypeAdd, ResourceType: prot.ResourceMappedVirtualDisk,
			Settings: json.RawMessage(`{"MountPath":"/run/mounts/scsi/m1","Lun":2,"ReadOnly":true,"Options":["ro"]}`),
		}}},
		{"dumpstacks_request", true, &prot.MessageBase{ContainerID: null, ActivityID: prot.NullActivityID}},
		{"dumpstacks_response", false, &prot.DumpStacksResponse{MessageResponseBase: okBase(), GuestStacks: "goroutine 1 [running]:\nmain.main()\n..."}},
		{"notification", false, &prot.ContainerNotification{MessageBase: base(cid2), Type: prot.NtUnexpectedExit, Operation: prot.AoNone}},
		{"error_response", false, &prot.MessageResponseBase{
			Result: prot.HrVmcomputeSystemNotFound.Int32(), ActivityID: prot.NullActivityID, ErrorMessage: "HRESULT: 0xc037010e",
			ErrorRecords: []prot.ErrorRecord{{Result: -1070137074, Message: "HRESULT: 0xc037010e", ModuleName: "gcs", Line: prot.UnknownLine}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			want := readGolden(t, tc.golden)
			var got []byte
			if tc.host {
				got = hostEncode(t, tc.value)
			} else {
				got = guestEncode(t, tc.value)
				want = bytes.TrimSuffix(want, []byte("\n"))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoding differs from the golden example\n got: %s\nwant: %s", got, want)
			}
			// Decode the example exactly as stored (host bodies with
			// their trailing newline).
			dec := newOf(tc.value)
			if err := prot.Decode(readGolden(t, tc.golden), dec, tc.golden); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(dec, tc.value) {
				t.Errorf("decoded\n %+v\nwant\n %+v", dec, tc.value)
			}
		})
	}
}

// TestGoldenInStringDocuments checks the JSON documents carried in string
// fields of the examples against their Go types.
func TestGoldenInStringDocuments(t *testing.T) {
	pauseSpec := &specs.Spec{
		Version: "1.1.0",
		Process: &specs.Process{
			User: specs.User{UID: 65535, GID: 65535},
			Args: []string{"/pause"},
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:  "/",
		},
		Root:     &specs.Root{Path: "/run/gcs/c/" + cid1 + "/rootfs", Readonly: true},
		Hostname: "mypod",
		Mounts:   []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type": "sandbox",
			"io.kubernetes.cri.sandbox-id":     cid1,
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
		Windows: &specs.Windows{Network: &specs.WindowsNetwork{NetworkNamespace: "3f1d3c3e-9a4b-4c8e-8f59-1b2f5a7e9d10"}},
	}
	tests := []struct {
		name  string
		doc   string
		value any
		exact bool // the Go encoding must equal doc byte for byte
	}{
		{"ContainerConfig", createConfig, &prot.VMHostedContainerSettingsV2{
			SchemaVersion:    prot.SchemaVersion{Major: 2, Minor: 1},
			OCIBundlePath:    "/run/gcs/c/" + cid1,
			OCISpecification: pauseSpec,
			ScratchDirPath:   "/run/gcs/c/" + cid1 + "/scratch/" + cid1,
			// runtime-spec always encodes windows.layerFolders (no
			// omitempty), which the abbreviated example leaves out.
		}, false},
		{"init ProcessParameters", initParams, &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true, CreateStdErrPipe: true}, true},
		{"exec tty ProcessParameters", execTTYParams, &prot.ProcessParameters{CreateStdInPipe: true, CreateStdOutPipe: true,
			OCIProcess: &specs.Process{Terminal: true, User: specs.User{UID: 0, GID: 0}, Args: []string{"/bin/sh"},
				Env: []string{"PATH=/usr/bin:/bin", "TERM=xterm"}, Cwd: "/"}}, true},
		{"external ProcessParameters", externalParams, &prot.ProcessParameters{
			CommandArgs:      []string{"/bin/install-drivers", "/run/drivers/5c1f0b7e-2d3a-5e4f-9a8b-7c6d5e4f3a2b", "/run/mounts/scsi/m3"},
			WorkingDirectory: "/",
			Environment:      map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			CreateStdErrPipe: true,
		}, true},
		{"Query", `{"PropertyTypes":["ProcessList"]}`, &prot.PropertyQuery{PropertyTypes: []prot.PropertyType{prot.PtProcessList}}, true},
		{"Properties", `{"ProcessList":[{"ProcessId":312},{"ProcessId":401}]}`, &prot.PropertiesV2{ProcessList: []prot.ProcessDetails{{ProcessID: 312}, {ProcessID: 401}}}, true},
		{"MappedVirtualDisk Settings", `{"MountPath":"/run/mounts/scsi/m1","Lun":2,"ReadOnly":true,"Options":["ro"]}`,
			&prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Lun: 2, ReadOnly: true, Options: []string{"ro"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := newOf(tc.value)
			if err := prot.DecodeInString(tc.doc, dec, tc.name); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(dec, tc.value) {
				t.Errorf("decoded\n %+v\nwant\n %+v", dec, tc.value)
			}
			if tc.exact {
				if got := guestEncode(t, tc.value); string(got) != tc.doc {
					t.Errorf("encoding\n got: %s\nwant: %s", got, tc.doc)
				}
			}
		})
	}
	// The ContainerConfig of the example is what a host produces from
	// the settings above, apart from the layerFolders key.
	var fromExample, fromGo map[string]any
	enc := guestEncode(t, tests[0].value)
	if err := json.Unmarshal(enc, &fromGo); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(createConfig), &fromExample); err != nil {
		t.Fatal(err)
	}
	win := fromGo["OciSpecification"].(map[string]any)["windows"].(map[string]any)
	if v, ok := win["layerFolders"]; !ok || v != nil {
		t.Fatalf("layerFolders = %v (present %v), want null", v, ok)
	}
	delete(win, "layerFolders")
	if !reflect.DeepEqual(fromGo, fromExample) {
		t.Errorf("ContainerConfig from Go\n %v\nwant\n %v", fromGo, fromExample)
	}
}

// TestStatisticsProperties checks the Statistics example: the metrics
// object is carried verbatim.
func TestStatisticsProperties(t *testing.T) {
	var p prot.PropertiesV2
	if err := prot.DecodeInString(statistics, &p, "Properties"); err != nil {
		t.Fatal(err)
	}
	if len(p.ProcessList) != 0 {
		t.Errorf("process list %v, want none", p.ProcessList)
	}
	var m struct {
		Pids   struct{ Current uint64 } `json:"pids"`
		Memory struct {
			Usage struct{ Limit uint64 } `json:"usage"`
		} `json:"memory"`
	}
	if err := json.Unmarshal(p.Metrics, &m); err != nil {
		t.Fatal(err)
	}
	if m.Pids.Current != 3 || m.Memory.Usage.Limit != 9223372036854771712 {
		t.Errorf("metrics %+v", m)
	}
}
