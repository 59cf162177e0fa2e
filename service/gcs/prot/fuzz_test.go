package prot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// requestBodies are the body types of every host->guest message, indexed
// by the fuzzers' kind byte.
var requestBodies = []func() any{
	func() any { return &prot.NegotiateProtocol{} },
	func() any { return &prot.ContainerCreate{} },
	func() any { return &prot.MessageBase{} }, // Start, Shutdown*, DumpStacks, DeleteContainerState
	func() any { return &prot.ContainerExecuteProcess{} },
	func() any { return &prot.ContainerWaitForProcess{} },
	func() any { return &prot.ContainerSignalProcess{} },
	func() any { return &prot.ContainerResizeConsole{} },
	func() any { return &prot.ContainerGetProperties{} },
	func() any { return &prot.ContainerModifySettings{} },
	func() any { return &prot.ContainerNotification{} },
	// ModifySettings resource settings.
	func() any { return &prot.LCOWMappedVirtualDisk{} },
	func() any { return &prot.SCSIDevice{} },
	func() any { return &prot.LCOWMappedVPMemDevice{} },
	func() any { return &prot.LCOWMappedDirectory{} },
	func() any { return &prot.LCOWCombinedLayers{} },
	func() any { return &prot.LCOWNetworkAdapter{} },
	func() any { return &prot.LCOWMappedVPCIDevice{} },
	func() any { return &prot.LCOWContainerConstraints{} },
	func() any { return &prot.ConfidentialOptions{} },
	func() any { return &prot.SecurityPolicyFragment{} },
}

// inStringDocs are the types decoded from string fields.
var inStringDocs = []func() any{
	func() any { return &prot.VMHostedContainerSettingsV2{} },
	func() any { return &prot.ProcessParameters{} },
	func() any { return &prot.PropertyQuery{} },
	func() any { return &prot.PropertiesV2{} },
}

// checkDecoded holds for every decode: a failure is an InvalidJSON
// *prot.Error; a success re-encodes, and encoding is a fixpoint after one
// decode (what the GCS would log or echo is stable).
func checkDecoded(t *testing.T, err error, v any, fresh func() any) {
	t.Helper()
	if err != nil {
		var pe *prot.Error
		if !errors.As(err, &pe) || pe.Result != prot.HrVmcomputeInvalidJSON {
			t.Fatalf("decode error %v is not InvalidJSON", err)
		}
		return
	}
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode %T: %v", v, err)
	}
	v2 := fresh()
	if err := prot.Decode(b1, v2, "re-encoded"); err != nil {
		t.Fatalf("decode of own encoding %s: %v", b1, err)
	}
	b2, err := json.Marshal(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding not stable:\n%s\n%s", b1, b2)
	}
}

func FuzzDecode(f *testing.F) {
	goldens, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		for k := range requestBodies {
			f.Add(uint8(k), b)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		fresh := requestBodies[int(kind)%len(requestBodies)]
		v := fresh()
		checkDecoded(t, prot.Decode(body, v, "fuzz"), v, fresh)
	})
}

func FuzzDecodeInString(f *testing.F) {
	for _, s := range []string{createConfig, initParams, execTTYParams, externalParams, statistics,
		`{"PropertyTypes":["ProcessList","Statistics"]}`, `{"SchemaVersion":{"Major":2,"Minor":0}}`, ""} {
		for k := range inStringDocs {
			f.Add(uint8(k), s)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, s string) {
		fresh := inStringDocs[int(kind)%len(inStringDocs)]
		v := fresh()
		checkDecoded(t, prot.DecodeInString(s, v, "fuzz"), v, fresh)
	})
}

// FuzzHeader: decoding never panics, re-encoding is exact, and CheckSize
// accepts exactly the sizes in [16, max].
func FuzzHeader(f *testing.F) {
	f.Add([]byte{0x01, 0x0b, 0x10, 0x10, 0x7c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(prot.MaxHostMessageSize))
	f.Add(bytes.Repeat([]byte{0xFF}, 16), uint32(4<<20))
	f.Fuzz(func(t *testing.T, b []byte, max uint32) {
		if len(b) < prot.HeaderSize {
			return
		}
		h := prot.DecodeHeader(b)
		out := make([]byte, prot.HeaderSize)
		h.Encode(out)
		if !bytes.Equal(out, b[:prot.HeaderSize]) {
			t.Fatalf("round trip % x -> % x", b[:16], out)
		}
		err := h.CheckSize(max)
		ok := h.Size >= prot.HeaderSize && h.Size <= max
		if ok != (err == nil) {
			t.Fatalf("CheckSize(%d) with size %d: %v", max, h.Size, err)
		}
		if ok && h.BodySize()+prot.HeaderSize != h.Size {
			t.Fatalf("body size %d for size %d", h.BodySize(), h.Size)
		}
	})
}
