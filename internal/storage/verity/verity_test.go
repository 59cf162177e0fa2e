package verity_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/Microsoft/hcsshim/ext4/dmverity"

	"github.com/opengcs/opengcs/internal/storage/storagetest"
	"github.com/opengcs/opengcs/internal/storage/verity"
)

func TestReadMatchesHostTooling(t *testing.T) {
	img := storagetest.LayerImage(t, "layer.img", map[string]string{"a": "hello", "dir/b": strings.Repeat("x", 100000)}, true)
	info, err := verity.Read(img)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want, err := dmverity.ReadDMVerityInfo(img, info.FSBytes)
	if err != nil {
		t.Fatalf("host-side reader: %v", err)
	}
	if info.RootDigest != want.RootDigest || info.Salt != want.Salt || info.Algorithm != want.Algorithm ||
		info.DataBlocks != want.DataBlocks || uint32(info.BlockSize) != want.DataBlockSize {
		t.Errorf("Read = %+v, host tooling says %+v", info, want)
	}
	tgt, err := info.Target("/dev/pmem0")
	if err != nil {
		t.Fatal(err)
	}
	if tgt.Type != "verity" || tgt.Length != uint64(info.FSBytes/512) {
		t.Errorf("target = %+v", tgt)
	}
	wantParams := "1 /dev/pmem0 /dev/pmem0 4096 4096 " // version, devices, block sizes
	if !strings.HasPrefix(tgt.Params, wantParams) || !strings.HasSuffix(tgt.Params, info.RootDigest+" "+info.Salt) {
		t.Errorf("params = %q", tgt.Params)
	}
}

func TestReadRejects(t *testing.T) {
	plain := storagetest.LayerImage(t, "plain.img", map[string]string{"a": "x"}, false)
	verityImg := storagetest.LayerImage(t, "v.img", map[string]string{"a": "x"}, true)
	info, err := verity.Read(verityImg)
	if err != nil {
		t.Fatal(err)
	}
	badAlg := corrupt(t, verityImg, info.FSBytes+32, []byte("md5\x00\x00\x00"))
	notExt4 := storagetest.SparseFile(t, "zero.img", 1<<20)
	tests := []struct {
		name string
		path string
		want error
	}{
		{"no verity appended", plain, verity.ErrNoVerity},
		{"not ext4", notExt4, verity.ErrNotExt4},
		{"unsupported algorithm", badAlg, verity.ErrBadSuperblock},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verity.Read(tc.path); !errors.Is(err, tc.want) {
				t.Fatalf("Read = %v, want %v", err, tc.want)
			}
		})
	}
}

// corrupt copies src and overwrites data at off in the copy.
func corrupt(t *testing.T, src string, off int64, data []byte) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[off:], data)
	p := src + ".bad"
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
