package vsockdev_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/opengcs/opengcs/internal/vsockdev"
)

// FuzzDecodePacket: any bytes decode or fail cleanly; a decoded header
// re-encodes to the same bytes and its payload is exactly Len bytes.
func FuzzDecodePacket(f *testing.F) {
	h := vsockdev.Header{SrcCID: 3, DstCID: 2, SrcPort: 1234, DstPort: 0x40000000, Len: 5, Type: 1, Op: vsockdev.OpRW, BufAlloc: 262144, FwdCnt: 17}
	b := make([]byte, vsockdev.HeaderSize)
	h.Encode(b)
	f.Add(append(b, "hello"...))
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, in []byte) {
		h, payload, err := vsockdev.DecodePacket(in, vsockdev.MaxPacketPayload)
		if err != nil {
			return
		}
		if uint32(len(payload)) != h.Len || h.Len > vsockdev.MaxPacketPayload {
			t.Fatalf("payload %d bytes for len %d", len(payload), h.Len)
		}
		out := make([]byte, vsockdev.HeaderSize)
		h.Encode(out)
		if !bytes.Equal(out, in[:vsockdev.HeaderSize]) {
			t.Fatalf("re-encoded %x, want %x", out, in[:vsockdev.HeaderSize])
		}
	})
}

// FuzzParseConnect: a line is accepted only as "CONNECT <decimal
// uint32>", which formats back to the same port.
func FuzzParseConnect(f *testing.F) {
	for _, s := range []string{"CONNECT 1\n", "CONNECT 1073741824\n", "CONNECT 4294967296\n", "connect 5\n", "CONNECT -1\n", "CONNECT +7\n", "CONNECT \n", "CONNECT 12 13\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		port, err := vsockdev.ParseConnect(line)
		if err != nil {
			return
		}
		again, err := vsockdev.ParseConnect(fmt.Sprintf("CONNECT %d\n", port))
		if err != nil || again != port {
			t.Fatalf("%q gave port %d; re-formatted: %d, %v", line, port, again, err)
		}
	})
}

func TestParseConnect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		port uint32
		ok   bool
	}{
		{"CONNECT 52\n", 52, true},
		{"CONNECT 4294967295\n", 4294967295, true},
		{"CONNECT 4294967296\n", 0, false},
		{"CONNECT -1\n", 0, false},
		{"CONNECT +1\n", 0, false},
		{"CONNECT\n", 0, false},
		{"connect 5\n", 0, false},
		{"CONNECT 5 6\n", 0, false},
	} {
		port, err := vsockdev.ParseConnect(tc.in)
		if (err == nil) != tc.ok || port != tc.port {
			t.Errorf("ParseConnect(%q) = %d, %v", tc.in, port, err)
		}
	}
}
