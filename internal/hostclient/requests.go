package hostclient

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

func base(cid string) prot.MessageBase {
	return prot.MessageBase{ContainerID: cid, ActivityID: prot.NullActivityID}
}

// Negotiate sends NegotiateProtocol for version 4, as hosts do.
func (c *Client) Negotiate(ctx context.Context) (*prot.NegotiateProtocolResponse, error) {
	req := prot.NegotiateProtocol{MessageBase: base(""), MinimumVersion: prot.ProtocolVersion, MaximumVersion: prot.ProtocolVersion}
	var resp prot.NegotiateProtocolResponse
	if err := c.Call(ctx, prot.ComputeSystemNegotiateProtocolV1, &req, &resp); err != nil {
		return nil, err
	}
	if resp.Version != prot.ProtocolVersion {
		return nil, fmt.Errorf("%w: negotiated version %d", ErrProtocol, resp.Version)
	}
	return &resp, nil
}

// CreateContainer sends Create with the settings encoded in a string.
func (c *Client) CreateContainer(ctx context.Context, id string, settings *prot.VMHostedContainerSettingsV2) error {
	cfg, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encode container config: %w", err)
	}
	req := prot.ContainerCreate{MessageBase: base(id), ContainerConfig: string(cfg)}
	var resp prot.ContainerCreateResponse
	return c.Call(ctx, prot.ComputeSystemCreateV1, &req, &resp)
}

// Start sends Start.
func (c *Client) Start(ctx context.Context, id string) error {
	req := base(id)
	return c.Call(ctx, prot.ComputeSystemStartV1, &req, &prot.MessageResponseBase{})
}

// Shutdown sends ShutdownForced (force) or ShutdownGraceful.
func (c *Client) Shutdown(ctx context.Context, id string, force bool) error {
	t := prot.ComputeSystemShutdownGracefulV1
	if force {
		t = prot.ComputeSystemShutdownForcedV1
	}
	req := base(id)
	return c.Call(ctx, t, &req, &prot.MessageResponseBase{})
}

// ExecuteProcess starts a process. params.OCIProcess nil on a container
// starts its init; id prot.NullContainerID runs an external process.
func (c *Client) ExecuteProcess(ctx context.Context, id string, params *prot.ProcessParameters, ports prot.ExecuteProcessVsockStdioRelaySettings) (uint32, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return 0, fmt.Errorf("encode process parameters: %w", err)
	}
	req := prot.ContainerExecuteProcess{MessageBase: base(id), Settings: prot.ExecuteProcessSettings{ProcessParameters: string(p), VsockStdioRelaySettings: ports}}
	var resp prot.ContainerExecuteProcessResponse
	if err := c.Call(ctx, prot.ComputeSystemExecuteProcessV1, &req, &resp); err != nil {
		return 0, err
	}
	return resp.ProcessID, nil
}

// WaitForProcess waits for pid to exit; timeoutMs prot.InfiniteWaitTimeout
// waits forever.
func (c *Client) WaitForProcess(ctx context.Context, id string, pid, timeoutMs uint32) (uint32, error) {
	req := prot.ContainerWaitForProcess{MessageBase: base(id), ProcessID: pid, TimeoutInMs: timeoutMs}
	var resp prot.ContainerWaitForProcessResponse
	if err := c.Call(ctx, prot.ComputeSystemWaitForProcessV1, &req, &resp); err != nil {
		return 0, err
	}
	return resp.ExitCode, nil
}

// SignalProcess sends signal sig (0: a plain kill without Options).
func (c *Client) SignalProcess(ctx context.Context, id string, pid uint32, sig int32) error {
	req := prot.ContainerSignalProcess{MessageBase: base(id), ProcessID: pid}
	if sig != 0 {
		req.Options = &prot.SignalProcessOptions{Signal: sig}
	}
	return c.Call(ctx, prot.ComputeSystemSignalProcessV1, &req, &prot.MessageResponseBase{})
}

// ResizeConsole resizes a process's terminal.
func (c *Client) ResizeConsole(ctx context.Context, id string, pid uint32, height, width uint16) error {
	req := prot.ContainerResizeConsole{MessageBase: base(id), ProcessID: pid, Height: height, Width: width}
	return c.Call(ctx, prot.ComputeSystemResizeConsoleV1, &req, &prot.MessageResponseBase{})
}

// GetProperties queries properties and decodes the Properties string.
func (c *Client) GetProperties(ctx context.Context, id string, types ...prot.PropertyType) (*prot.PropertiesV2, error) {
	q, err := json.Marshal(prot.PropertyQuery{PropertyTypes: types})
	if err != nil {
		return nil, err
	}
	req := prot.ContainerGetProperties{MessageBase: base(id), Query: string(q)}
	var resp prot.ContainerGetPropertiesResponse
	if err := c.Call(ctx, prot.ComputeSystemGetPropertiesV1, &req, &resp); err != nil {
		return nil, err
	}
	var props prot.PropertiesV2
	if resp.Properties != "" {
		if err := json.Unmarshal([]byte(resp.Properties), &props); err != nil {
			return nil, fmt.Errorf("%w: Properties string: %w", ErrProtocol, err)
		}
	}
	return &props, nil
}

// Modify sends ModifySettings with settings marshalled as an object.
func (c *Client) Modify(ctx context.Context, id, requestType, resourceType string, settings any) error {
	req := prot.ContainerModifySettings{MessageBase: base(id), Request: prot.ModificationRequest{RequestType: requestType, ResourceType: resourceType}}
	if settings != nil {
		raw, err := json.Marshal(settings)
		if err != nil {
			return fmt.Errorf("encode settings: %w", err)
		}
		req.Request.Settings = raw
	}
	return c.Call(ctx, prot.ComputeSystemModifySettingsV1, &req, &prot.MessageResponseBase{})
}

// DumpStacks asks for the guest's goroutine stacks.
func (c *Client) DumpStacks(ctx context.Context) (string, error) {
	req := base(prot.NullContainerID)
	var resp prot.DumpStacksResponse
	if err := c.Call(ctx, prot.ComputeSystemDumpStacksV1, &req, &resp); err != nil {
		return "", err
	}
	return resp.GuestStacks, nil
}

// DeleteContainerState sends DeleteContainerState.
func (c *Client) DeleteContainerState(ctx context.Context, id string) error {
	req := base(id)
	return c.Call(ctx, prot.ComputeSystemDeleteContainerStateV1, &req, &prot.MessageResponseBase{})
}

// ContainerSettings builds the Create settings a shim v1 host sends.
func ContainerSettings(bundle, scratch string, spec *specs.Spec) *prot.VMHostedContainerSettingsV2 {
	return &prot.VMHostedContainerSettingsV2{
		SchemaVersion:    prot.SchemaVersion{Major: 2, Minor: 1},
		OCIBundlePath:    bundle,
		OCISpecification: spec,
		ScratchDirPath:   scratch,
	}
}
