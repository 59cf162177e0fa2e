package prot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

func TestHeaderEncodeDecode(t *testing.T) {
	tests := []struct {
		name  string
		h     prot.Header
		bytes []byte
	}{
		{"negotiate", prot.Header{Type: prot.ComputeSystemNegotiateProtocolV1, Size: 0x7c, ID: 0},
			[]byte{0x01, 0x0b, 0x10, 0x10, 0x7c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"little-endian id", prot.Header{Type: prot.ComputeSystemNotificationV1, Size: 0x10000, ID: 0x0102030405060708},
			[]byte{0x01, 0x01, 0x10, 0x30, 0x00, 0x00, 0x01, 0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}},
		{"all ones", prot.Header{Type: 0xFFFFFFFF, Size: 0xFFFFFFFF, ID: 0xFFFFFFFFFFFFFFFF}, bytes.Repeat([]byte{0xFF}, 16)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, prot.HeaderSize)
			tc.h.Encode(b)
			if !bytes.Equal(b, tc.bytes) {
				t.Errorf("encoded % x, want % x", b, tc.bytes)
			}
			if got := prot.DecodeHeader(tc.bytes); got != tc.h {
				t.Errorf("decoded %+v, want %+v", got, tc.h)
			}
		})
	}
}

func TestHeaderCheckSize(t *testing.T) {
	tests := []struct {
		size    uint32
		max     uint32
		wantErr error
		body    uint32
	}{
		{0, prot.MaxHostMessageSize, prot.ErrFrameTooSmall, 0},
		{15, prot.MaxHostMessageSize, prot.ErrFrameTooSmall, 0},
		{16, prot.MaxHostMessageSize, nil, 0},
		{17, prot.MaxHostMessageSize, nil, 1},
		{prot.MaxHostMessageSize, prot.MaxHostMessageSize, nil, prot.MaxHostMessageSize - 16},
		{prot.MaxHostMessageSize + 1, prot.MaxHostMessageSize, prot.ErrFrameTooLarge, 0},
		{0xFFFFFFFF, 4 << 20, prot.ErrFrameTooLarge, 0},
		{16, 16, nil, 0},
		{17, 16, prot.ErrFrameTooLarge, 0},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(int(tc.size))+"/"+strconv.Itoa(int(tc.max)), func(t *testing.T) {
			h := prot.Header{Size: tc.size}
			err := h.CheckSize(tc.max)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckSize = %v, want %v", err, tc.wantErr)
			}
			if err == nil && h.BodySize() != tc.body {
				t.Fatalf("BodySize = %d, want %d", h.BodySize(), tc.body)
			}
		})
	}
}

// TestIdentifiers checks every identifier of docs/protocol.md, "Message
// identifiers", its response and its name.
func TestIdentifiers(t *testing.T) {
	tests := []struct {
		id   prot.MessageIdentifier
		req  uint32
		resp uint32
		name string
	}{
		{prot.ComputeSystemCreateV1, 0x10100101, 0x20100101, "Create"},
		{prot.ComputeSystemStartV1, 0x10100201, 0x20100201, "Start"},
		{prot.ComputeSystemShutdownGracefulV1, 0x10100301, 0x20100301, "ShutdownGraceful"},
		{prot.ComputeSystemShutdownForcedV1, 0x10100401, 0x20100401, "ShutdownForced"},
		{prot.ComputeSystemExecuteProcessV1, 0x10100501, 0x20100501, "ExecuteProcess"},
		{prot.ComputeSystemWaitForProcessV1, 0x10100601, 0x20100601, "WaitForProcess"},
		{prot.ComputeSystemSignalProcessV1, 0x10100701, 0x20100701, "SignalProcess"},
		{prot.ComputeSystemResizeConsoleV1, 0x10100801, 0x20100801, "ResizeConsole"},
		{prot.ComputeSystemGetPropertiesV1, 0x10100901, 0x20100901, "GetProperties"},
		{prot.ComputeSystemModifySettingsV1, 0x10100a01, 0x20100a01, "ModifySettings"},
		{prot.ComputeSystemNegotiateProtocolV1, 0x10100b01, 0x20100b01, "NegotiateProtocol"},
		{prot.ComputeSystemDumpStacksV1, 0x10100c01, 0x20100c01, "DumpStacks"},
		{prot.ComputeSystemDeleteContainerStateV1, 0x10100d01, 0x20100d01, "DeleteContainerState"},
		{prot.ComputeSystemUpdateContainerV1, 0x10100e01, 0x20100e01, "UpdateContainer"},
		{prot.ComputeSystemLifecycleNotifyV1, 0x10100f01, 0x20100f01, "LifecycleNotification"},
		{prot.ComputeServiceModifySettingsV1, 0x10200101, 0x20200101, "ModifyServiceSettings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if uint32(tc.id) != tc.req {
				t.Errorf("id 0x%08x, want 0x%08x", uint32(tc.id), tc.req)
			}
			if !tc.id.IsRequest() {
				t.Errorf("IsRequest false")
			}
			r := prot.ResponseFor(tc.id)
			if uint32(r) != tc.resp {
				t.Errorf("response 0x%08x, want 0x%08x", uint32(r), tc.resp)
			}
			if r.IsRequest() {
				t.Errorf("response IsRequest true")
			}
			if tc.id.String() != tc.name {
				t.Errorf("String %q, want %q", tc.id.String(), tc.name)
			}
			if r.String() != tc.name+"(response)" {
				t.Errorf("response String %q", r.String())
			}
		})
	}
	if uint32(prot.ComputeSystemNotificationV1) != 0x30100101 || prot.ComputeSystemNotificationV1.String() != "ContainerNotification" || prot.ComputeSystemNotificationV1.IsRequest() {
		t.Errorf("notification id %s", prot.ComputeSystemNotificationV1)
	}
}

// TestResponseForUnknown: the formula applies to any identifier.
func TestResponseForUnknown(t *testing.T) {
	tests := []struct {
		in, want uint32
		name     string
	}{
		{0x10100f02, 0x20100f02, "0x10100f02"},
		{0x1abcdef1, 0x2abcdef1, "0x1abcdef1"},
		{0x10101001, 0x20101001, "0x10101001"},
		{0x20100101, 0x20100101, "Create(response)"},
		{0x30100101, 0x20100101, "ContainerNotification"},
		{0x00000000, 0x20000000, "0x00000000"},
		{0xFFFFFFFF, 0x2FFFFFFF, "0xffffffff"},
		{0x40100b01, 0x20100b01, "0x40100b01"},
	}
	for _, tc := range tests {
		id := prot.MessageIdentifier(tc.in)
		if got := prot.ResponseFor(id); uint32(got) != tc.want {
			t.Errorf("ResponseFor(0x%08x) = 0x%08x, want 0x%08x", tc.in, uint32(got), tc.want)
		}
		if id.String() != tc.name {
			t.Errorf("String(0x%08x) = %q, want %q", tc.in, id.String(), tc.name)
		}
	}
}

// TestHResults checks every HRESULT against docs/protocol.md, "HRESULTs": hex
// value, decimal Result on the wire, text.
func TestHResults(t *testing.T) {
	tests := []struct {
		hr      prot.HResult
		hex     uint32
		decimal int32
	}{
		{prot.HrNotImpl, 0x80004001, -2147467263},
		{prot.HrFail, 0x80004005, -2147467259},
		{prot.HrErrNotFound, 0x80070490, -2147023728},
		{prot.HrErrInvalidArg, 0x80070057, -2147024809},
		{prot.HrVmcomputeTimeout, 0xC0370109, -1070137079},
		{prot.HrVmcomputeUnknownMessage, 0xC037010B, -1070137077},
		{prot.HrVmcomputeUnsupportedProtocolVersion, 0xC037010C, -1070137076},
		{prot.HrVmcomputeInvalidJSON, 0xC037010D, -1070137075},
		{prot.HrVmcomputeSystemNotFound, 0xC037010E, -1070137074},
		{prot.HrVmcomputeSystemAlreadyExists, 0xC037010F, -1070137073},
		{prot.HrVmcomputeSystemAlreadyStopped, 0xC0370110, -1070137072},
		{prot.HrVmcomputeInvalidState, 0x80370105, -2143878907},
		{prot.HrOK, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.hr.String(), func(t *testing.T) {
			if uint32(tc.hr) != tc.hex {
				t.Errorf("value 0x%08x, want 0x%08x", uint32(tc.hr), tc.hex)
			}
			if tc.hr.Int32() != tc.decimal {
				t.Errorf("Int32 %d, want %d", tc.hr.Int32(), tc.decimal)
			}
			if want := "HRESULT: 0x" + strconv.FormatUint(uint64(tc.hex)|1<<32, 16)[1:]; tc.hr.String() != want {
				t.Errorf("String %q, want %q", tc.hr.String(), want)
			}
			b, err := json.Marshal(prot.MessageResponseBase{Result: tc.hr.Int32()})
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"Result":` + strconv.Itoa(int(tc.decimal)) + `}`; string(b) != want {
				t.Errorf("wire %s, want %s", b, want)
			}
		})
	}
}

func TestError(t *testing.T) {
	inner := errors.New("no such container")
	tests := []struct {
		name    string
		err     *prot.Error
		hr      prot.HResult
		text    string
		unwraps error
	}{
		{"NewError", prot.NewError(prot.HrVmcomputeSystemNotFound, inner), prot.HrVmcomputeSystemNotFound, "no such container", inner},
		{"Errorf wraps", prot.Errorf(prot.HrFail, "create %s: %w", "c1", inner), prot.HrFail, "create c1: no such container", inner},
		{"nil inner", &prot.Error{Result: prot.HrNotImpl}, prot.HrNotImpl, "HRESULT: 0x80004001", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err.Result != tc.hr || tc.err.Error() != tc.text {
				t.Errorf("got %s %q", tc.err.Result, tc.err.Error())
			}
			if tc.unwraps != nil && !errors.Is(tc.err, tc.unwraps) {
				t.Errorf("does not unwrap to %v", tc.unwraps)
			}
			// Wrapped further, the HRESULT is still found.
			var pe *prot.Error
			if !errors.As(errors.Join(errors.New("outer"), tc.err), &pe) || pe.Result != tc.hr {
				t.Errorf("errors.As lost the HRESULT")
			}
		})
	}
}
