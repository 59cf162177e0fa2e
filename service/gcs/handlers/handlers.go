package handlers

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/opengcs/opengcs/internal/debug"
	"github.com/opengcs/opengcs/internal/tracing"
	"github.com/opengcs/opengcs/service/gcs/bridge"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// stackLimit keeps a stack dump, once JSON-encoded, well inside one frame.
const stackLimit = 60 << 10

// Guest is the state the handlers act on: containers, processes and
// resources of the utility VM. Errors carry their HRESULT as *prot.Error;
// anything else is answered with E_FAIL.
type Guest interface {
	CreateContainer(ctx context.Context, id string, settings *prot.VMHostedContainerSettingsV2) error
	// ShutdownContainer signals a container's init: SIGTERM when graceful,
	// SIGKILL otherwise. The returned func, if not nil, must run once the
	// response has been queued (it may release the exit notification).
	ShutdownContainer(ctx context.Context, id string, graceful bool) (func(), error)
	// ShutdownUVM stops serving and powers the VM off; it does not return
	// on success.
	ShutdownUVM(ctx context.Context) error
	ExecuteProcess(ctx context.Context, id string, params *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error)
	// WaitForProcess blocks until pid exits or timeout passes (negative:
	// forever). The returned func, if not nil, must run once the response
	// has been queued (it may release the container's exit notification).
	WaitForProcess(ctx context.Context, id string, pid uint32, timeout time.Duration) (uint32, func(), error)
	SignalProcess(ctx context.Context, id string, pid uint32, signal int) error
	ResizeConsole(ctx context.Context, id string, pid uint32, height, width uint16) error
	GetProperties(ctx context.Context, id string, query *prot.PropertyQuery) (*prot.PropertiesV2, error)
	ModifySettings(ctx context.Context, id string, req *prot.ModificationRequest) error
	DeleteContainerState(ctx context.Context, id string) error
}

// StackDumpPolicy is implemented by a Guest whose security policy may
// refuse DumpStacks.
type StackDumpPolicy interface {
	StackDumpAllowed(ctx context.Context) error
}

// Register installs every v4 handler on mux.
func Register(mux *bridge.Mux, g Guest) {
	h := &handlers{g: g}
	// Each handler runs in a child span of the request's, named as in
	// the reference (upstream internal/guest/bridge/bridge_v2.go).
	mux.HandleFunc(prot.ComputeSystemCreateV1, traced("createContainerV2", h.create))
	mux.HandleFunc(prot.ComputeSystemStartV1, traced("startContainerV2", h.start))
	mux.HandleFunc(prot.ComputeSystemShutdownGracefulV1, traced("shutdownContainerV2", h.shutdown(true)))
	mux.HandleFunc(prot.ComputeSystemShutdownForcedV1, traced("killContainerV2", h.shutdown(false)))
	mux.HandleFunc(prot.ComputeSystemExecuteProcessV1, traced("execProcessV2", h.executeProcess))
	mux.HandleFunc(prot.ComputeSystemWaitForProcessV1, traced("waitOnProcessV2", h.waitForProcess))
	mux.HandleFunc(prot.ComputeSystemSignalProcessV1, traced("signalProcessV2", h.signalProcess))
	mux.HandleFunc(prot.ComputeSystemResizeConsoleV1, traced("resizeConsoleV2", h.resizeConsole))
	mux.HandleFunc(prot.ComputeSystemGetPropertiesV1, traced("getPropertiesV2", h.getProperties))
	mux.HandleFunc(prot.ComputeSystemModifySettingsV1, traced("modifySettingsV2", h.modifySettings))
	mux.HandleFunc(prot.ComputeSystemDumpStacksV1, traced("dumpStacksV2", h.dumpStacks))
	mux.HandleFunc(prot.ComputeSystemDeleteContainerStateV1, traced("deleteContainerStateV2", h.deleteContainerState))
}

type handlerFunc = func(context.Context, *bridge.Request) (prot.Response, error)

// traced runs f in a span "opengcs::bridge::<name>" below the request's
// span (none when tracing is off), with the container id as attribute
// "cid" and the error, if any, as its status.
func traced(name string, f handlerFunc) handlerFunc {
	name = "opengcs::bridge::" + name
	return func(ctx context.Context, req *bridge.Request) (prot.Response, error) {
		ctx, span := tracing.Start(ctx, name)
		resp, err := f(ctx, req)
		if span.IsRecording() {
			span.SetAttributes(attribute.String("cid", req.Base().ContainerID))
			if !errors.Is(err, bridge.ErrNoResponse) {
				tracing.SetError(span, err)
			}
		}
		span.End()
		return resp, err
	}
}

// spanAttrs adds attributes to the handler's span.
func spanAttrs(ctx context.Context, attrs ...attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrs...)
	}
}

type handlers struct {
	g Guest
}

func (h *handlers) create(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerCreate
	if err := req.Decode(&r, "Create"); err != nil {
		return nil, err
	}
	var settings prot.VMHostedContainerSettingsV2
	if err := prot.DecodeInString(r.ContainerConfig, &settings, "Create ContainerConfig"); err != nil {
		return nil, err
	}
	if !settings.SchemaVersion.AtLeast(2, 1) {
		return nil, prot.Errorf(prot.HrVmcomputeInvalidJSON, "Create: schema version %d.%d is not supported (need 2.1 or later)",
			settings.SchemaVersion.Major, settings.SchemaVersion.Minor)
	}
	if settings.OCISpecification == nil {
		return nil, prot.Errorf(prot.HrVmcomputeInvalidJSON, "Create: ContainerConfig has no OciSpecification")
	}
	if err := h.g.CreateContainer(ctx, r.ContainerID, &settings); err != nil {
		return nil, err
	}
	return &prot.ContainerCreateResponse{}, nil
}

func (h *handlers) start(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.MessageBase
	if err := req.Decode(&r, "Start"); err != nil {
		return nil, err
	}
	// The container really starts with its init's ExecuteProcess, when the
	// host hands over the stdio ports.
	return &prot.MessageResponseBase{}, nil
}

func (h *handlers) shutdown(graceful bool) func(context.Context, *bridge.Request) (prot.Response, error) {
	return func(ctx context.Context, req *bridge.Request) (prot.Response, error) {
		var r prot.MessageBase
		if err := req.Decode(&r, req.Type.String()); err != nil {
			return nil, err
		}
		spanAttrs(ctx, attribute.Bool("graceful", graceful))
		if r.ContainerID == prot.NullContainerID {
			if err := h.g.ShutdownUVM(ctx); err != nil {
				return nil, err
			}
			return nil, bridge.ErrNoResponse
		}
		after, err := h.g.ShutdownContainer(ctx, r.ContainerID, graceful)
		if after != nil {
			bridge.AfterResponse(ctx, after)
		}
		if err != nil {
			return nil, err
		}
		return &prot.MessageResponseBase{}, nil
	}
}

func (h *handlers) executeProcess(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerExecuteProcess
	if err := req.Decode(&r, "ExecuteProcess"); err != nil {
		return nil, err
	}
	var params prot.ProcessParameters
	if err := prot.DecodeInString(r.Settings.ProcessParameters, &params, "ExecuteProcess ProcessParameters"); err != nil {
		return nil, err
	}
	pid, err := h.g.ExecuteProcess(ctx, r.ContainerID, &params, r.Settings.VsockStdioRelaySettings)
	if err != nil {
		return nil, err
	}
	return &prot.ContainerExecuteProcessResponse{ProcessID: pid}, nil
}

func (h *handlers) waitForProcess(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerWaitForProcess
	if err := req.Decode(&r, "WaitForProcess"); err != nil {
		return nil, err
	}
	spanAttrs(ctx, attribute.Int64("pid", int64(r.ProcessID)), attribute.Int64("timeout-ms", int64(r.TimeoutInMs)))
	timeout := time.Duration(-1)
	if r.TimeoutInMs != prot.InfiniteWaitTimeout {
		timeout = time.Duration(r.TimeoutInMs) * time.Millisecond
	}
	code, after, err := h.g.WaitForProcess(ctx, r.ContainerID, r.ProcessID, timeout)
	if after != nil {
		bridge.AfterResponse(ctx, after)
	}
	if err != nil {
		return nil, err
	}
	return &prot.ContainerWaitForProcessResponse{ExitCode: code}, nil
}

func (h *handlers) signalProcess(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerSignalProcess
	if err := req.Decode(&r, "SignalProcess"); err != nil {
		return nil, err
	}
	sig := 0
	if r.Options != nil {
		sig = int(r.Options.Signal)
	}
	spanAttrs(ctx, attribute.Int64("pid", int64(r.ProcessID)), attribute.Int64("signal", int64(sig)))
	if err := h.g.SignalProcess(ctx, r.ContainerID, r.ProcessID, sig); err != nil {
		return nil, err
	}
	return &prot.MessageResponseBase{}, nil
}

func (h *handlers) resizeConsole(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerResizeConsole
	if err := req.Decode(&r, "ResizeConsole"); err != nil {
		return nil, err
	}
	spanAttrs(ctx, attribute.Int64("pid", int64(r.ProcessID)), attribute.Int64("height", int64(r.Height)), attribute.Int64("width", int64(r.Width)))
	if err := h.g.ResizeConsole(ctx, r.ContainerID, r.ProcessID, r.Height, r.Width); err != nil {
		return nil, err
	}
	return &prot.MessageResponseBase{}, nil
}

func (h *handlers) getProperties(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerGetProperties
	if err := req.Decode(&r, "GetProperties"); err != nil {
		return nil, err
	}
	var q prot.PropertyQuery
	if r.Query != "" {
		if err := prot.DecodeInString(r.Query, &q, "GetProperties Query"); err != nil {
			return nil, err
		}
	}
	if r.ContainerID == prot.NullContainerID {
		return nil, prot.Errorf(prot.HrFail, "GetProperties is not supported against the utility VM")
	}
	props, err := h.g.GetProperties(ctx, r.ContainerID, &q)
	if err != nil {
		return nil, err
	}
	s, err := encodeProperties(props)
	if err != nil {
		return nil, err
	}
	return &prot.ContainerGetPropertiesResponse{Properties: s}, nil
}

func (h *handlers) modifySettings(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.ContainerModifySettings
	if err := req.Decode(&r, "ModifySettings"); err != nil {
		return nil, err
	}
	if r.Request.RequestType == "" {
		r.Request.RequestType = prot.RequestTypeAdd
	}
	if err := h.g.ModifySettings(ctx, r.ContainerID, &r.Request); err != nil {
		return nil, err
	}
	return &prot.MessageResponseBase{}, nil
}

func (h *handlers) dumpStacks(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.MessageBase
	if err := req.Decode(&r, "DumpStacks"); err != nil {
		return nil, err
	}
	if p, ok := h.g.(StackDumpPolicy); ok {
		if err := p.StackDumpAllowed(ctx); err != nil {
			return nil, err
		}
	}
	return &prot.DumpStacksResponse{GuestStacks: debug.Stacks(stackLimit)}, nil
}

func (h *handlers) deleteContainerState(ctx context.Context, req *bridge.Request) (prot.Response, error) {
	var r prot.MessageBase
	if err := req.Decode(&r, "DeleteContainerState"); err != nil {
		return nil, err
	}
	if err := h.g.DeleteContainerState(ctx, r.ContainerID); err != nil {
		return nil, err
	}
	return &prot.MessageResponseBase{}, nil
}
