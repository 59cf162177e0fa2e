package initrd

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the cpio reader: it must return an
// error or entries, never panic or loop.
func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	tr := NewTree()
	_ = tr.File("a/b", 0o644, []byte("hello"))
	_ = tr.Symlink("c", "a/b")
	_ = tr.WriteCPIO(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("070701"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cr := NewReader(bytes.NewReader(in))
		for i := 0; i < 1000; i++ {
			h, err := cr.Next()
			if err != nil {
				return
			}
			n, err := io.Copy(io.Discard, cr)
			if err == nil && n != int64(h.Size) {
				t.Fatalf("entry %q: read %d bytes, header says %d", h.Name, n, h.Size)
			}
		}
	})
}
