package prot

import "fmt"

// MessageIdentifier is the 32-bit message type of a frame: a type nibble,
// a category byte, a 12-bit message id and a version byte.
type MessageIdentifier uint32

// Masks of the identifier's fields.
const (
	TypeMask     MessageIdentifier = 0xF0000000
	CategoryMask MessageIdentifier = 0x0FF00000
	IDMask       MessageIdentifier = 0x000FFF00
	VersionMask  MessageIdentifier = 0x000000FF
)

// Type nibbles.
const (
	TypeRequest      MessageIdentifier = 0x10000000
	TypeResponse     MessageIdentifier = 0x20000000
	TypeNotification MessageIdentifier = 0x30000000
)

// Categories.
const (
	CategoryComputeSystem  MessageIdentifier = 0x00100000
	CategoryComputeService MessageIdentifier = 0x00200000
)

// Requests the host sends.
const (
	ComputeSystemCreateV1               MessageIdentifier = 0x10100101
	ComputeSystemStartV1                MessageIdentifier = 0x10100201
	ComputeSystemShutdownGracefulV1     MessageIdentifier = 0x10100301
	ComputeSystemShutdownForcedV1       MessageIdentifier = 0x10100401
	ComputeSystemExecuteProcessV1       MessageIdentifier = 0x10100501
	ComputeSystemWaitForProcessV1       MessageIdentifier = 0x10100601
	ComputeSystemSignalProcessV1        MessageIdentifier = 0x10100701
	ComputeSystemResizeConsoleV1        MessageIdentifier = 0x10100801
	ComputeSystemGetPropertiesV1        MessageIdentifier = 0x10100901
	ComputeSystemModifySettingsV1       MessageIdentifier = 0x10100a01
	ComputeSystemNegotiateProtocolV1    MessageIdentifier = 0x10100b01
	ComputeSystemDumpStacksV1           MessageIdentifier = 0x10100c01
	ComputeSystemDeleteContainerStateV1 MessageIdentifier = 0x10100d01
	ComputeSystemUpdateContainerV1      MessageIdentifier = 0x10100e01
	ComputeSystemLifecycleNotifyV1      MessageIdentifier = 0x10100f01
	ComputeServiceModifySettingsV1      MessageIdentifier = 0x10200101
)

// ComputeSystemNotificationV1 is the only notification: a container exit.
const ComputeSystemNotificationV1 MessageIdentifier = 0x30100101

// ResponseFor returns the response identifier of a request identifier: the
// type nibble becomes "response" and everything else is kept. It applies to
// any identifier, including ones the GCS does not understand.
func ResponseFor(req MessageIdentifier) MessageIdentifier {
	return TypeResponse | (req &^ TypeMask)
}

// IsRequest reports whether id carries the request type nibble.
func (id MessageIdentifier) IsRequest() bool { return id&TypeMask == TypeRequest }

var names = map[MessageIdentifier]string{
	ComputeSystemCreateV1:               "Create",
	ComputeSystemStartV1:                "Start",
	ComputeSystemShutdownGracefulV1:     "ShutdownGraceful",
	ComputeSystemShutdownForcedV1:       "ShutdownForced",
	ComputeSystemExecuteProcessV1:       "ExecuteProcess",
	ComputeSystemWaitForProcessV1:       "WaitForProcess",
	ComputeSystemSignalProcessV1:        "SignalProcess",
	ComputeSystemResizeConsoleV1:        "ResizeConsole",
	ComputeSystemGetPropertiesV1:        "GetProperties",
	ComputeSystemModifySettingsV1:       "ModifySettings",
	ComputeSystemNegotiateProtocolV1:    "NegotiateProtocol",
	ComputeSystemDumpStacksV1:           "DumpStacks",
	ComputeSystemDeleteContainerStateV1: "DeleteContainerState",
	ComputeSystemUpdateContainerV1:      "UpdateContainer",
	ComputeSystemLifecycleNotifyV1:      "LifecycleNotification",
	ComputeServiceModifySettingsV1:      "ModifyServiceSettings",
	ComputeSystemNotificationV1:         "ContainerNotification",
}

// String names the message, e.g. "ExecuteProcess" or
// "ExecuteProcess(response)", falling back to hex.
func (id MessageIdentifier) String() string {
	if n, ok := names[id]; ok {
		return n
	}
	if id&TypeMask == TypeResponse {
		if n, ok := names[TypeRequest|(id&^TypeMask)]; ok {
			return n + "(response)"
		}
	}
	return fmt.Sprintf("0x%08x", uint32(id))
}
