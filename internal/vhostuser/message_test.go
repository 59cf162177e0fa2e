package vhostuser_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/opengcs/opengcs/internal/vhostuser"
)

func msg(req vhostuser.Request, flags uint32, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(req))
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func le64(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func TestDecode(t *testing.T) {
	memTable := append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, le64(0, 1<<20, 0x7f0000000000, 0)...)
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
		chk  func(*vhostuser.Message) bool
	}{
		{"features", msg(vhostuser.SetFeatures, 1, le64(1<<32)), nil, func(m *vhostuser.Message) bool { return m.U64 == 1<<32 }},
		{"mem table", msg(vhostuser.SetMemTable, 1|8, memTable), nil, func(m *vhostuser.Message) bool {
			return len(m.Regions) == 1 && m.Regions[0].Size == 1<<20 && m.NeedReply()
		}},
		{"vring addr", msg(vhostuser.SetVringAddr, 1, append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, le64(10, 20, 30, 0)...)), nil, func(m *vhostuser.Message) bool {
			return m.Addr.Index == 1 && m.Addr.Desc == 10 && m.Addr.Used == 20 && m.Addr.Avail == 30
		}},
		{"kick without fd", msg(vhostuser.SetVringKick, 1, le64(1|1<<8)), nil, func(m *vhostuser.Message) bool { return m.VringIndex() == 1 && m.VringNoFD() }},
		{"get config", msg(vhostuser.GetConfig, 1, append([]byte{0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 8)...)), nil, func(m *vhostuser.Message) bool { return m.Config.Size == 8 }},
		{"unknown kept raw", msg(77, 1, []byte{1, 2}), nil, func(m *vhostuser.Message) bool { return len(m.Payload) == 2 }},
		{"short header", []byte{1, 0, 0}, vhostuser.ErrShortMessage, nil},
		{"version 2", msg(vhostuser.GetFeatures, 2, nil), vhostuser.ErrBadVersion, nil},
		{"huge size", append(msg(vhostuser.SetFeatures, 1, nil)[:8], 0xff, 0xff, 0, 0), vhostuser.ErrTooLarge, nil},
		{"truncated payload", msg(vhostuser.SetFeatures, 1, le64(1))[:16], vhostuser.ErrShortMessage, nil},
		{"short vring state", msg(vhostuser.SetVringNum, 1, []byte{0, 0, 0, 0}), vhostuser.ErrShortMessage, nil},
		{"zero regions", msg(vhostuser.SetMemTable, 1, make([]byte, 8)), vhostuser.ErrTooLarge, nil},
		{"nine regions", msg(vhostuser.SetMemTable, 1, append([]byte{9, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 9*32)...)), vhostuser.ErrTooLarge, nil},
		{"regions beyond payload", msg(vhostuser.SetMemTable, 1, append([]byte{2, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 32)...)), vhostuser.ErrShortMessage, nil},
		{"config too big", msg(vhostuser.GetConfig, 1, []byte{0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0}), vhostuser.ErrTooLarge, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := vhostuser.Decode(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.chk != nil && !tc.chk(m) {
				t.Fatalf("decoded %+v", m)
			}
		})
	}
}

// FuzzDecode: any bytes decode or fail cleanly, and what decodes stays
// within the protocol's limits.
func FuzzDecode(f *testing.F) {
	f.Add(msg(vhostuser.SetMemTable, 9, append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, le64(0, 1<<20, 0x7f0000000000, 0)...)))
	f.Add(msg(vhostuser.GetConfig, 1, append([]byte{0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 8)...)))
	f.Add(msg(vhostuser.SetVringAddr, 1, make([]byte, 40)))
	f.Add(msg(vhostuser.SetVringKick, 1, le64(0x100)))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := vhostuser.Decode(in)
		if err != nil {
			return
		}
		if int(m.Size) != len(m.Payload) || m.Size > vhostuser.MaxPayload {
			t.Fatalf("payload %d bytes, size %d", len(m.Payload), m.Size)
		}
		if len(m.Regions) > vhostuser.MaxRegions || m.Config.Size > vhostuser.MaxConfigSize || int(m.Config.Size) != len(m.Config.Data) {
			t.Fatalf("decoded beyond limits: %d regions, config %d/%d", len(m.Regions), m.Config.Size, len(m.Config.Data))
		}
	})
}
