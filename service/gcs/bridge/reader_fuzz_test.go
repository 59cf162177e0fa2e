package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

const readerFuzzMax = 4 << 10

// refFrame is a frame as the wire format defines it, parsed here without
// the reader's code: type, size and id little-endian, then size-16 bytes.
type refFrame struct {
	typ  uint32
	id   uint64
	body []byte
}

// refParse returns the complete frames before the first bad header or
// truncated frame, and how the input ends: "eof" on a frame boundary,
// "bad" at a size out of bounds, "short" in the middle of a frame.
func refParse(data []byte, maxSize uint32) ([]refFrame, string) {
	var out []refFrame
	for {
		if len(data) == 0 {
			return out, "eof"
		}
		if len(data) < 16 {
			return out, "short"
		}
		size := binary.LittleEndian.Uint32(data[4:8])
		if size < 16 || size > maxSize {
			return out, "bad"
		}
		if uint64(len(data)) < uint64(size) {
			return out, "short"
		}
		out = append(out, refFrame{
			typ:  binary.LittleEndian.Uint32(data[0:4]),
			id:   binary.LittleEndian.Uint64(data[8:16]),
			body: data[16:size],
		})
		data = data[size:]
	}
}

// FuzzReader feeds arbitrary bytes to the frame reader that Serve reads
// every request with. It must return exactly the frames the wire format
// defines, in order, then io.EOF on a frame boundary, ErrBadHeader for a
// size out of bounds (before allocating from it) or a read error for a
// truncated frame; one byte per read changes nothing.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		want, end := refParse(data, readerFuzzMax)
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(data)
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			fr := newFrameReader(src, readerFuzzMax)
			for i := 0; ; i++ {
				h, body, err := fr.next()
				if err != nil {
					if i != len(want) {
						t.Fatalf("error %v after %d frames, want %d frames", err, i, len(want))
					}
					switch end {
					case "eof":
						if err != io.EOF {
							t.Fatalf("end on a frame boundary: %v, want io.EOF", err)
						}
					case "bad":
						if !errors.Is(err, ErrBadHeader) || !(errors.Is(err, prot.ErrFrameTooSmall) || errors.Is(err, prot.ErrFrameTooLarge)) {
							t.Fatalf("bad size: %v, want ErrBadHeader", err)
						}
					case "short":
						if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrBadHeader) {
							t.Fatalf("truncated frame: %v, want io.ErrUnexpectedEOF", err)
						}
					}
					break
				}
				if i >= len(want) {
					t.Fatalf("frame %d (%+v) beyond the %d in the input", i, h, len(want))
				}
				w := want[i]
				if uint32(h.Type) != w.typ || h.ID != w.id || int(h.Size) != 16+len(w.body) || !bytes.Equal(body, w.body) {
					t.Fatalf("frame %d: %+v body %q, want type %#x id %d body %q", i, h, body, w.typ, w.id, w.body)
				}
			}
		}
	})
}
