package prot_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestDecodeHostVariants decodes bodies the way the different hosts send
// them: trailing whitespace, keys in any case, absent zero fields, unknown
// keys.
func TestDecodeHostVariants(t *testing.T) {
	tests := []struct {
		name string
		body string
		want any
	}{
		{"trailing newline and spaces", "{\"ContainerId\":\"a\",\"ActivityId\":\"b\",\"ProcessId\":7,\"TimeoutInMs\":0}\n \t\r\n",
			&prot.ContainerWaitForProcess{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"}, ProcessID: 7}},
		{"lower-case keys", `{"containerid":"a","activityid":"b","processid":7,"timeoutinms":50}`,
			&prot.ContainerWaitForProcess{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"}, ProcessID: 7, TimeoutInMs: 50}},
		{"ContainerID upper-case D on a message", `{"ContainerID":"a","ActivityID":"b"}`,
			&prot.MessageBase{ContainerID: "a", ActivityID: "b"}},
		{"ContainerId lower-case d on CombinedLayers", `{"ContainerId":"c","ContainerRootPath":"/r","Layers":[{"path":"/l"}]}`,
			&prot.LCOWCombinedLayers{ContainerID: "c", ContainerRootPath: "/r", Layers: []prot.Layer{{Path: "/l"}}}},
		{"absent Lun and Controller", `{"MountPath":"/m","ReadOnly":true}`,
			&prot.LCOWMappedVirtualDisk{MountPath: "/m", ReadOnly: true}},
		{"unknown keys ignored", `{"ContainerId":"a","ActivityId":"b","ProcessId":9,"Height":1,"Width":2,"Frobnicate":{"x":[1,2]}}`,
			&prot.ContainerResizeConsole{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"}, ProcessID: 9, Height: 1, Width: 2}},
		{"plain kill without Options", `{"ContainerId":"a","ActivityId":"b","ProcessId":9}`,
			&prot.ContainerSignalProcess{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"}, ProcessID: 9}},
		{"Options null", `{"ContainerId":"a","ActivityId":"b","ProcessId":9,"Options":null}`,
			&prot.ContainerSignalProcess{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"}, ProcessID: 9}},
		{"legacy SupportedVersions on Create", `{"ContainerId":"a","ActivityId":"b","ContainerConfig":"{}","SupportedVersions":{"MinimumVersion":"V4","MaximumProtocolVersion":4}}`,
			&prot.ContainerCreate{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"}, ContainerConfig: "{}",
				SupportedVersions: &prot.ProtocolSupport{MinimumVersion: "V4", MaximumProtocolVersion: 4}}},
		{"otsc with tracestate", `{"ContainerId":"a","ActivityId":"b","otsc":{"traceparent":"00-x-y-01","tracestate":"k=v"}}`,
			&prot.MessageBase{ContainerID: "a", ActivityID: "b", OpenTelemetrySpanContext: map[string]string{"traceparent": "00-x-y-01", "tracestate": "k=v"}}},
		{"ModifySettings without RequestType", `{"ContainerId":"a","ActivityId":"b","Request":{"ResourceType":"VPCIDevice","Settings":{"VMBusGUID":"g"}}}`,
			&prot.ContainerModifySettings{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"},
				Request: prot.ModificationRequest{ResourceType: "VPCIDevice", Settings: json.RawMessage(`{"VMBusGUID":"g"}`)}}},
		{"ExecuteProcess with hvsock relay settings", `{"ContainerId":"a","ActivityId":"b","Settings":{"ProcessParameters":"{}","StdioRelaySettings":{"StdIn":"g1"}}}`,
			&prot.ContainerExecuteProcess{MessageBase: prot.MessageBase{ContainerID: "a", ActivityID: "b"},
				Settings: prot.ExecuteProcessSettings{ProcessParameters: "{}", StdioRelaySettings: &prot.ExecuteProcessStdioRelaySettings{StdIn: "g1"}}}},
		{"ExitCode of a signal death", `{"Result":0,"ExitCode":4294967295}`,
			&prot.ContainerWaitForProcessResponse{ExitCode: 4294967295}},
		{"negative Result", `{"Result":-2147467259,"ErrorMessage":"x"}`,
			&prot.MessageResponseBase{Result: prot.HrFail.Int32(), ErrorMessage: "x"}},
		{"Create response with version string", `{"Result":0,"SelectedProtocolVersion":4,"SelectedVersion":"V4"}`,
			&prot.ContainerCreateResponse{SelectedProtocolVersion: 4, SelectedVersion: "V4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := newOf(tc.want)
			if err := prot.Decode([]byte(tc.body), got, tc.name); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestIntegerWidths checks the integer types the host's decoder depends
// on: Result is int32 (HRESULTs negative), ExitCode/ProcessId/Version
// uint32, Height/Width uint16.
func TestIntegerWidths(t *testing.T) {
	enc := []struct {
		name  string
		value any
		want  string
	}{
		{"Result of E_FAIL", &prot.MessageResponseBase{Result: prot.HrFail.Int32()}, `{"Result":-2147467259}`},
		{"ExitCode -1", &prot.ContainerWaitForProcessResponse{ExitCode: uint32(0xFFFFFFFF)}, `{"Result":0,"ExitCode":4294967295}`},
		{"ProcessId max", &prot.ContainerExecuteProcessResponse{ProcessID: 4294967295}, `{"Result":0,"ProcessId":4294967295}`},
		{"ErrorRecord unknown line", &prot.ErrorRecord{Result: prot.HrNotImpl.Int32(), Line: prot.UnknownLine},
			`{"Result":-2147467263,"Message":"","ModuleName":"","FileName":"","Line":4294967295}`},
		{"notification Result", &prot.ContainerNotification{Result: prot.HrFail.Int32()},
			`{"ContainerId":"","ActivityId":"","Type":"","Operation":"","Result":-2147467259}`},
	}
	for _, tc := range enc {
		t.Run(tc.name, func(t *testing.T) {
			if got := guestEncode(t, tc.value); string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	// What the host would do with the wrong widths: an unsigned HRESULT
	// or a negative exit code does not decode.
	bad := []struct {
		name string
		body string
		into any
	}{
		{"unsigned Result", `{"Result":3224830222}`, &prot.MessageResponseBase{}},
		{"negative ExitCode", `{"Result":0,"ExitCode":-1}`, &prot.ContainerWaitForProcessResponse{}},
		{"Version above uint32", `{"Result":0,"Version":4294967296}`, &prot.NegotiateProtocolResponse{}},
		{"Height above uint16", `{"ProcessId":1,"Height":65536}`, &prot.ContainerResizeConsole{}},
		{"Lun above uint8", `{"Lun":256}`, &prot.LCOWMappedVirtualDisk{}},
		{"Signal as string", `{"ProcessId":1,"Options":{"Signal":"TERM"}}`, &prot.ContainerSignalProcess{}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := prot.Decode([]byte(tc.body), tc.into, tc.name)
			assertInvalidJSON(t, err, tc.name)
		})
	}
}

func assertInvalidJSON(t *testing.T, err error, what string) {
	t.Helper()
	var pe *prot.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want *prot.Error", err, err)
	}
	if pe.Result != prot.HrVmcomputeInvalidJSON {
		t.Fatalf("result %s, want InvalidJSON", pe.Result)
	}
	if !strings.Contains(err.Error(), what) {
		t.Fatalf("error %q does not name %q", err, what)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"whitespace", " \n"},
		{"truncated", `{"ContainerId":"a"`},
		{"array", `[1,2]`},
		{"string field as number", `{"ContainerId":5}`},
		{"two values", `{"ContainerId":"a"} {}`},
		{"trailing garbage", "{}\nx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m prot.MessageBase
			assertInvalidJSON(t, prot.Decode([]byte(tc.body), &m, "Probe"), "Probe")
		})
	}
}

func TestDecodeInString(t *testing.T) {
	tests := []struct {
		name    string
		s       string
		wantErr bool
		want    prot.PropertyQuery
	}{
		{"empty", "", true, prot.PropertyQuery{}},
		{"blank", " \n\t", true, prot.PropertyQuery{}},
		{"not JSON", "ProcessList", true, prot.PropertyQuery{}},
		{"wrong shape", `{"PropertyTypes":"ProcessList"}`, true, prot.PropertyQuery{}},
		{"two types", `{"PropertyTypes":["ProcessList","Statistics"]}`, false,
			prot.PropertyQuery{PropertyTypes: []prot.PropertyType{prot.PtProcessList, prot.PtStatistics}}},
		{"trailing newline", "{\"propertytypes\":[\"Statistics\"]}\n", false,
			prot.PropertyQuery{PropertyTypes: []prot.PropertyType{prot.PtStatistics}}},
		{"null", "null", false, prot.PropertyQuery{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q prot.PropertyQuery
			err := prot.DecodeInString(tc.s, &q, "Query")
			if tc.wantErr {
				assertInvalidJSON(t, err, "Query")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, tc.want) {
				t.Errorf("got %+v, want %+v", q, tc.want)
			}
		})
	}
}

func TestSchemaVersionAtLeast(t *testing.T) {
	tests := []struct {
		v    prot.SchemaVersion
		want bool
	}{
		{prot.SchemaVersion{Major: 2, Minor: 1}, true},
		{prot.SchemaVersion{Major: 2, Minor: 0}, false},
		{prot.SchemaVersion{Major: 2, Minor: 5}, true},
		{prot.SchemaVersion{Major: 1, Minor: 9}, false},
		{prot.SchemaVersion{Major: 3, Minor: 0}, true},
		{prot.SchemaVersion{}, false},
	}
	for _, tc := range tests {
		if got := tc.v.AtLeast(2, 1); got != tc.want {
			t.Errorf("%+v.AtLeast(2,1) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
