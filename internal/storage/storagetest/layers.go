package storagetest

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

// LayerImage builds an ext4 layer image from a tar stream holding files
// (name -> content) the way hosts ship layers: tar2ext4 with the dm-verity
// superblock and Merkle tree appended. It returns the image path.
func LayerImage(t testing.TB, name string, files map[string]string, withVerity bool) string {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var opts []tar2ext4.Option
	if withVerity {
		opts = append(opts, tar2ext4.AppendDMVerity)
	}
	if err := tar2ext4.Convert(&tarBuf, f, opts...); err != nil {
		t.Fatalf("tar2ext4: %v", err)
	}
	return p
}
