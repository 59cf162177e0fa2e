package prot

import (
	"encoding/json"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// NullContainerID addresses the utility VM itself.
const NullContainerID = "00000000-0000-0000-0000-000000000000"

// NullActivityID is the all-zero GUID modern hosts send as ActivityId.
const NullActivityID = "00000000-0000-0000-0000-000000000000"

// ProtocolVersion is the only bridge protocol version the GCS speaks.
const ProtocolVersion = 4

// InfiniteWaitTimeout is the TimeoutInMs value that means "no timeout".
const InfiniteWaitTimeout = 0xFFFFFFFF

// MessageBase starts every request body and the notification.
type MessageBase struct {
	ContainerID string `json:"ContainerId"`
	ActivityID  string `json:"ActivityId"`
	// OpenTelemetrySpanContext is the W3C trace-context carrier
	// (traceparent, tracestate). Diagnostic only.
	OpenTelemetrySpanContext map[string]string `json:"otsc,omitempty"`
	// OpenCensusSpanContext is the deprecated OpenCensus carrier, kept
	// opaque.
	OpenCensusSpanContext json.RawMessage `json:"ocsc,omitempty"`
}

// MessageBaseOf returns the base itself; every request type embeds it, so
// generic code can reach it.
func (m *MessageBase) MessageBaseOf() *MessageBase { return m }

// MessageResponseBase starts every response body.
type MessageResponseBase struct {
	Result       int32         `json:"Result"`
	ActivityID   string        `json:"ActivityId,omitempty"`
	ErrorMessage string        `json:"ErrorMessage,omitempty"`
	ErrorRecords []ErrorRecord `json:"ErrorRecords,omitempty"`
}

// Base returns the response base itself; every response type embeds it,
// so this lets generic code reach it.
func (b *MessageResponseBase) Base() *MessageResponseBase { return b }

// Response is implemented by every response body.
type Response interface {
	Base() *MessageResponseBase
}

// ErrorRecord describes one failure in a response.
type ErrorRecord struct {
	Result       int32  `json:"Result"`
	Message      string `json:"Message"`
	StackTrace   string `json:"StackTrace,omitempty"`
	ModuleName   string `json:"ModuleName"`
	FileName     string `json:"FileName"`
	Line         uint32 `json:"Line"`
	FunctionName string `json:"FunctionName,omitempty"`
}

// UnknownLine is the Line of an ErrorRecord whose source line is unknown.
const UnknownLine = 0xFFFFFFFF

// NegotiateProtocol is the first request on every connection.
type NegotiateProtocol struct {
	MessageBase
	MinimumVersion uint32 `json:"MinimumVersion"`
	MaximumVersion uint32 `json:"MaximumVersion"`
}

// NegotiateProtocolResponse answers NegotiateProtocol.
type NegotiateProtocolResponse struct {
	MessageResponseBase
	Version      uint32          `json:"Version"`
	Capabilities GcsCapabilities `json:"Capabilities"`
}

// SchemaVersion is an HCS schema version.
type SchemaVersion struct {
	Major uint32 `json:"Major"`
	Minor uint32 `json:"Minor"`
}

// AtLeast reports whether v >= major.minor.
func (v SchemaVersion) AtLeast(major, minor uint32) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// GcsCapabilities tells the host what the guest supports.
type GcsCapabilities struct {
	SendHostCreateMessage    bool                 `json:"SendHostCreateMessage,omitempty"`
	SendHostStartMessage     bool                 `json:"SendHostStartMessage,omitempty"`
	HvSocketConfigOnStartup  bool                 `json:"HvSocketConfigOnStartup,omitempty"`
	SupportedSchemaVersions  []SchemaVersion      `json:"SupportedSchemaVersions,omitempty"`
	RuntimeOsType            string               `json:"RuntimeOsType,omitempty"`
	GuestDefinedCapabilities GcsGuestCapabilities `json:"GuestDefinedCapabilities"`
}

// GcsGuestCapabilities are the LCOW-specific capabilities.
type GcsGuestCapabilities struct {
	NamespaceAddRequestSupported  bool `json:"NamespaceAddRequestSupported,omitempty"`
	SignalProcessSupported        bool `json:"SignalProcessSupported,omitempty"`
	DumpStacksSupported           bool `json:"DumpStacksSupported,omitempty"`
	DeleteContainerStateSupported bool `json:"DeleteContainerStateSupported,omitempty"`
}

// LinuxCapabilities are the capabilities a Linux GCS advertises.
func LinuxCapabilities() GcsCapabilities {
	return GcsCapabilities{
		SupportedSchemaVersions: []SchemaVersion{{Major: 2, Minor: 1}},
		RuntimeOsType:           "Linux",
		GuestDefinedCapabilities: GcsGuestCapabilities{
			NamespaceAddRequestSupported:  true,
			SignalProcessSupported:        true,
			DumpStacksSupported:           true,
			DeleteContainerStateSupported: true,
		},
	}
}

// ProtocolSupport is the legacy version range some hosts attach to Create.
type ProtocolSupport struct {
	MinimumVersion         string `json:"MinimumVersion,omitempty"`
	MaximumVersion         string `json:"MaximumVersion,omitempty"`
	MinimumProtocolVersion uint32 `json:"MinimumProtocolVersion,omitempty"`
	MaximumProtocolVersion uint32 `json:"MaximumProtocolVersion,omitempty"`
}

// ContainerCreate creates a container. ContainerConfig holds a JSON
// document (VMHostedContainerSettingsV2) encoded as a string.
type ContainerCreate struct {
	MessageBase
	ContainerConfig string `json:"ContainerConfig"`
	// SupportedVersions is a pointer so that, like real hosts, an absent
	// value is not encoded (a struct is never omitted by encoding/json).
	SupportedVersions *ProtocolSupport `json:"SupportedVersions,omitempty"`
}

// VMHostedContainerSettingsV2 is the decoded ContainerConfig.
type VMHostedContainerSettingsV2 struct {
	SchemaVersion    SchemaVersion `json:"SchemaVersion"`
	OCIBundlePath    string        `json:"OciBundlePath,omitempty"`
	OCISpecification *specs.Spec   `json:"OciSpecification,omitempty"`
	ScratchDirPath   string        `json:"ScratchDirPath,omitempty"`
}

// ContainerCreateResponse answers Create.
type ContainerCreateResponse struct {
	MessageResponseBase
	SelectedProtocolVersion uint32 `json:"SelectedProtocolVersion"`
	SelectedVersion         string `json:"SelectedVersion,omitempty"`
}

// ContainerExecuteProcess starts a process: a container's init, an exec in
// a container, or an external process in the utility VM.
type ContainerExecuteProcess struct {
	MessageBase
	Settings ExecuteProcessSettings `json:"Settings"`
}

// ExecuteProcessSettings carries the process parameters (JSON in a string)
// and the host's stdio ports.
type ExecuteProcessSettings struct {
	ProcessParameters       string                                `json:"ProcessParameters"`
	StdioRelaySettings      *ExecuteProcessStdioRelaySettings     `json:"StdioRelaySettings,omitempty"`
	VsockStdioRelaySettings ExecuteProcessVsockStdioRelaySettings `json:"VsockStdioRelaySettings"`
}

// ExecuteProcessStdioRelaySettings is the Windows-guest variant (hvsock
// service GUIDs); ignored by the Linux GCS.
type ExecuteProcessStdioRelaySettings struct {
	StdIn  string `json:"StdIn,omitempty"`
	StdOut string `json:"StdOut,omitempty"`
	StdErr string `json:"StdErr,omitempty"`
}

// ExecuteProcessVsockStdioRelaySettings are the vsock ports the host
// listens on for each stdio stream.
type ExecuteProcessVsockStdioRelaySettings struct {
	StdIn  uint32 `json:"StdIn,omitempty"`
	StdOut uint32 `json:"StdOut,omitempty"`
	StdErr uint32 `json:"StdErr,omitempty"`
}

// ProcessParameters is the decoded ExecuteProcessSettings.ProcessParameters.
type ProcessParameters struct {
	CommandLine      string            `json:"CommandLine,omitempty"`
	CommandArgs      []string          `json:"CommandArgs,omitempty"`
	WorkingDirectory string            `json:"WorkingDirectory,omitempty"`
	Environment      map[string]string `json:"Environment,omitempty"`
	EmulateConsole   bool              `json:"EmulateConsole,omitempty"`
	CreateStdInPipe  bool              `json:"CreateStdInPipe,omitempty"`
	CreateStdOutPipe bool              `json:"CreateStdOutPipe,omitempty"`
	CreateStdErrPipe bool              `json:"CreateStdErrPipe,omitempty"`
	// IsExternal forces the process to run in the utility VM.
	IsExternal       bool           `json:"CreateInUtilityVM,omitempty"`
	OCISpecification *specs.Spec    `json:"OciSpecification,omitempty"`
	OCIProcess       *specs.Process `json:"OciProcess,omitempty"`
}

// ContainerExecuteProcessResponse answers ExecuteProcess.
type ContainerExecuteProcessResponse struct {
	MessageResponseBase
	ProcessID uint32 `json:"ProcessId"`
}

// ContainerWaitForProcess waits for a process to exit.
type ContainerWaitForProcess struct {
	MessageBase
	ProcessID   uint32 `json:"ProcessId"`
	TimeoutInMs uint32 `json:"TimeoutInMs"`
}

// ContainerWaitForProcessResponse answers WaitForProcess.
type ContainerWaitForProcessResponse struct {
	MessageResponseBase
	ExitCode uint32 `json:"ExitCode"`
}

// SignalProcessOptions carries the signal number; 0 means SIGKILL.
type SignalProcessOptions struct {
	Signal int32 `json:"Signal"`
}

// ContainerSignalProcess sends a signal to a process.
type ContainerSignalProcess struct {
	MessageBase
	ProcessID uint32                `json:"ProcessId"`
	Options   *SignalProcessOptions `json:"Options,omitempty"`
}

// ContainerResizeConsole resizes a process's terminal.
type ContainerResizeConsole struct {
	MessageBase
	ProcessID uint32 `json:"ProcessId"`
	Height    uint16 `json:"Height"`
	Width     uint16 `json:"Width"`
}

// ContainerGetProperties asks for container properties. Query is a JSON
// document (PropertyQuery) in a string; empty means none.
type ContainerGetProperties struct {
	MessageBase
	Query string `json:"Query"`
}

// PropertyType names a property the host can query.
type PropertyType string

// Property types the Linux GCS answers.
const (
	PtProcessList PropertyType = "ProcessList"
	PtStatistics  PropertyType = "Statistics"
)

// PropertyQuery is the decoded ContainerGetProperties.Query.
type PropertyQuery struct {
	PropertyTypes []PropertyType `json:"PropertyTypes"`
}

// ContainerGetPropertiesResponse answers GetProperties. Properties is a
// JSON document (PropertiesV2) in a string.
type ContainerGetPropertiesResponse struct {
	MessageResponseBase
	Properties string `json:"Properties"`
}

// ProcessDetails is one entry of a process list.
type ProcessDetails struct {
	ProcessID uint32 `json:"ProcessId"`
}

// PropertiesV2 is the decoded ContainerGetPropertiesResponse.Properties.
type PropertiesV2 struct {
	ProcessList []ProcessDetails `json:"ProcessList,omitempty"`
	Metrics     json.RawMessage  `json:"LCOWMetrics,omitempty"`
}

// ContainerModifySettings adds, removes or updates a resource.
type ContainerModifySettings struct {
	MessageBase
	Request ModificationRequest `json:"Request"`
}

// Request types of a ModificationRequest.
const (
	RequestTypeAdd    = "Add"
	RequestTypeRemove = "Remove"
	RequestTypeUpdate = "Update"
	RequestTypePreAdd = "PreAdd"
)

// ModificationRequest is the ModifySettings envelope. Settings is decoded
// per ResourceType by the handler.
type ModificationRequest struct {
	RequestType  string          `json:"RequestType,omitempty"`
	ResourceType string          `json:"ResourceType,omitempty"`
	Settings     json.RawMessage `json:"Settings,omitempty"`
}

// DumpStacksResponse answers DumpStacks.
type DumpStacksResponse struct {
	MessageResponseBase
	GuestStacks string `json:"GuestStacks"`
}

// NotificationType is the kind of container exit.
type NotificationType string

// Notification types the GCS sends.
const (
	NtUnexpectedExit NotificationType = "UnexpectedExit"
	NtGracefulExit   NotificationType = "GracefulExit"
	NtForcedExit     NotificationType = "ForcedExit"
)

// ActiveOperation is the operation a notification refers to; always None.
type ActiveOperation string

// AoNone is the only operation the GCS reports.
const AoNone ActiveOperation = "None"

// ContainerNotification is sent once when a container's init exits.
type ContainerNotification struct {
	MessageBase
	Type       NotificationType `json:"Type"`
	Operation  ActiveOperation  `json:"Operation"`
	Result     int32            `json:"Result"`
	ResultInfo string           `json:"ResultInfo,omitempty"`
}

// Decode unmarshals a request body into v. Trailing whitespace (the host's
// encoder adds a newline) is accepted; a decode failure is an InvalidJSON
// error naming the message.
func Decode(body []byte, v any, what string) error {
	if err := json.Unmarshal(body, v); err != nil {
		return NewError(HrVmcomputeInvalidJSON, fmt.Errorf("invalid %s body: %w", what, err))
	}
	return nil
}

// DecodeInString unmarshals a JSON document carried in a string field.
func DecodeInString(s string, v any, what string) error {
	if strings.TrimSpace(s) == "" {
		return NewError(HrVmcomputeInvalidJSON, fmt.Errorf("%s is empty", what))
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return NewError(HrVmcomputeInvalidJSON, fmt.Errorf("invalid %s: %w", what, err))
	}
	return nil
}
