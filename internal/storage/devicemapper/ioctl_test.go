package devicemapper

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The hand-marshalled layout must match the kernel structs as x/sys
// describes them.
func TestLayoutMatchesKernel(t *testing.T) {
	var h unix.DmIoctl
	var s unix.DmTargetSpec
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"header size", headerSize, unsafe.Sizeof(h)},
		{"flags offset", offFlags, unsafe.Offsetof(h.Flags)},
		{"dev offset", offDev, unsafe.Offsetof(h.Dev)},
		{"name offset", offName, unsafe.Offsetof(h.Name)},
		{"target spec size", targetSpecSize, unsafe.Sizeof(s)},
		{"target type offset", 24, unsafe.Offsetof(s.Target_type)},
		{"next offset", 20, unsafe.Offsetof(s.Next)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, kernel has %d", c.name, c.got, c.want)
		}
	}
}

func TestMarshal(t *testing.T) {
	r := request{name: "dm-linear-pmem0-0-4096", flags: unix.DM_READONLY_FLAG, targets: []Target{
		{Start: 0, Length: 8, Type: "linear", Params: "/dev/pmem0 0"},
		{Start: 8, Length: 8, Type: "linear", Params: "/dev/pmem1 16"},
	}}
	b, err := r.marshal()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != 4 || int(le.Uint32(b[12:])) != len(b) || le.Uint32(b[16:]) != headerSize || le.Uint32(b[20:]) != 2 {
		t.Fatalf("bad header: version %d size %d start %d count %d", le.Uint32(b[0:]), le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint32(b[20:]))
	}
	if le.Uint32(b[offFlags:]) != unix.DM_READONLY_FLAG {
		t.Errorf("flags not set")
	}
	// Walk the specs as the kernel does.
	off := headerSize
	for i, want := range r.targets {
		spec := b[off:]
		next := int(le.Uint32(spec[20:]))
		if next%8 != 0 || le.Uint64(spec[0:]) != want.Start || le.Uint64(spec[8:]) != want.Length {
			t.Fatalf("target %d: next %d start %d len %d", i, next, le.Uint64(spec[0:]), le.Uint64(spec[8:]))
		}
		typ := string(spec[24 : 24+len(want.Type)])
		params := string(spec[targetSpecSize : targetSpecSize+len(want.Params)])
		if typ != want.Type || params != want.Params || spec[targetSpecSize+len(want.Params)] != 0 {
			t.Errorf("target %d: %q %q", i, typ, params)
		}
		off += next
	}
	if off != len(b) {
		t.Errorf("specs end at %d, buffer is %d", off, len(b))
	}
}
