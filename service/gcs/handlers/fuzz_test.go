package handlers_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

var fuzzTypes = []prot.MessageIdentifier{
	prot.ComputeSystemCreateV1, prot.ComputeSystemStartV1, prot.ComputeSystemShutdownGracefulV1,
	prot.ComputeSystemShutdownForcedV1, prot.ComputeSystemExecuteProcessV1, prot.ComputeSystemWaitForProcessV1,
	prot.ComputeSystemSignalProcessV1, prot.ComputeSystemResizeConsoleV1, prot.ComputeSystemGetPropertiesV1,
	prot.ComputeSystemModifySettingsV1, prot.ComputeSystemDumpStacksV1, prot.ComputeSystemDeleteContainerStateV1,
}

// expectedCall decodes body independently of the handlers and returns the
// guest call it must produce (nil: none) and whether the request must be
// rejected as InvalidJSON.
func expectedCall(typ prot.MessageIdentifier, body []byte) (want *call, invalid bool) {
	var base prot.MessageBase
	if json.Unmarshal(body, &base) != nil {
		return nil, true
	}
	cid := base.ContainerID
	switch typ {
	case prot.ComputeSystemCreateV1:
		var r prot.ContainerCreate
		var s prot.VMHostedContainerSettingsV2
		if json.Unmarshal(body, &r) != nil || prot.DecodeInString(r.ContainerConfig, &s, "") != nil ||
			!s.SchemaVersion.AtLeast(2, 1) || s.OCISpecification == nil {
			return nil, true
		}
		return &call{Method: "CreateContainer", ID: cid, Settings: &s}, false
	case prot.ComputeSystemShutdownGracefulV1, prot.ComputeSystemShutdownForcedV1:
		if cid == prot.NullContainerID {
			return &call{Method: "ShutdownUVM"}, false
		}
		return &call{Method: "ShutdownContainer", ID: cid, Graceful: typ == prot.ComputeSystemShutdownGracefulV1}, false
	case prot.ComputeSystemExecuteProcessV1:
		var r prot.ContainerExecuteProcess
		var p prot.ProcessParameters
		if json.Unmarshal(body, &r) != nil || prot.DecodeInString(r.Settings.ProcessParameters, &p, "") != nil {
			return nil, true
		}
		return &call{Method: "ExecuteProcess", ID: cid, Params: &p, Ports: r.Settings.VsockStdioRelaySettings}, false
	case prot.ComputeSystemWaitForProcessV1:
		var r prot.ContainerWaitForProcess
		if json.Unmarshal(body, &r) != nil {
			return nil, true
		}
		timeout := time.Duration(-1)
		if r.TimeoutInMs != prot.InfiniteWaitTimeout {
			timeout = time.Duration(r.TimeoutInMs) * time.Millisecond
		}
		return &call{Method: "WaitForProcess", ID: cid, PID: r.ProcessID, Timeout: timeout}, false
	case prot.ComputeSystemSignalProcessV1:
		var r prot.ContainerSignalProcess
		if json.Unmarshal(body, &r) != nil {
			return nil, true
		}
		c := &call{Method: "SignalProcess", ID: cid, PID: r.ProcessID}
		if r.Options != nil {
			c.Signal = int(r.Options.Signal)
		}
		return c, false
	case prot.ComputeSystemResizeConsoleV1:
		var r prot.ContainerResizeConsole
		if json.Unmarshal(body, &r) != nil {
			return nil, true
		}
		return &call{Method: "ResizeConsole", ID: cid, PID: r.ProcessID, Height: r.Height, Width: r.Width}, false
	case prot.ComputeSystemGetPropertiesV1:
		var r prot.ContainerGetProperties
		var q prot.PropertyQuery
		if json.Unmarshal(body, &r) != nil || (r.Query != "" && prot.DecodeInString(r.Query, &q, "") != nil) {
			return nil, true
		}
		if cid == prot.NullContainerID {
			return nil, false
		}
		return &call{Method: "GetProperties", ID: cid, Query: &q}, false
	case prot.ComputeSystemModifySettingsV1:
		var r prot.ContainerModifySettings
		if json.Unmarshal(body, &r) != nil {
			return nil, true
		}
		if r.Request.RequestType == "" {
			r.Request.RequestType = prot.RequestTypeAdd
		}
		return &call{Method: "ModifySettings", ID: cid, Modify: &r.Request}, false
	case prot.ComputeSystemDeleteContainerStateV1:
		return &call{Method: "DeleteContainerState", ID: cid}, false
	}
	return nil, false // Start, DumpStacks
}

// FuzzHandlers sends arbitrary bodies to every handler through a bridge:
// no panic, exactly one response, InvalidJSON for whatever does not
// decode, and a guest call carrying exactly the decoded values otherwise.
func FuzzHandlers(f *testing.F) {
	for i, name := range []string{"create_request", "start_request", "shutdown_request", "shutdown_request", "execute_init_request",
		"wait_request", "signal_request", "resize_request", "properties_request", "modify_request", "dumpstacks_request", "delete_request"} {
		f.Add(uint8(i), golden(f, name))
	}
	f.Add(uint8(4), golden(f, "execute_exec_tty_request"))
	f.Add(uint8(4), golden(f, "execute_external_request"))
	f.Add(uint8(9), golden(f, "res_network_add"))
	f.Add(uint8(2), []byte(`{"ContainerId":"00000000-0000-0000-0000-000000000000"}`))
	f.Add(uint8(8), []byte(`{"ContainerId":"00000000-0000-0000-0000-000000000000","Query":""}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		typ := fuzzTypes[int(kind)%len(fuzzTypes)]
		h := newHarness(t)
		// A successful UVM shutdown sends nothing; make it fail so every
		// request is answered.
		h.g.errs["ShutdownUVM"] = errors.New("not powering off in a test")
		r := h.roundTrip(typ, body)
		h.b.Wait()
		calls := h.g.takeCalls()
		want, invalid := expectedCall(typ, body)
		switch {
		case invalid:
			if r.Result != prot.HrVmcomputeInvalidJSON.Int32() || len(calls) != 0 {
				t.Fatalf("undecodable body: result %d, calls %s", r.Result, describe(calls))
			}
		case want == nil:
			if len(calls) != 0 {
				t.Fatalf("unexpected calls %s", describe(calls))
			}
		default:
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], *want) {
				t.Fatalf("calls %s, want %s", describe(calls), describe([]call{*want}))
			}
			if want.Method == "ShutdownUVM" {
				if r.Result != prot.HrFail.Int32() {
					t.Fatalf("failed shutdown answered %d", r.Result)
				}
			} else if r.Result != 0 {
				t.Fatalf("result %d: %s", r.Result, r.Body)
			}
		}
	})
}
