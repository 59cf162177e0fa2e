package devicemapper_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
	"github.com/opengcs/opengcs/internal/storage/storagetest"
)

func TestTargets(t *testing.T) {
	tests := []struct {
		name    string
		build   func() (devicemapper.Target, error)
		want    devicemapper.Target
		wantErr error
	}{
		{
			name:  "linear at offset",
			build: func() (devicemapper.Target, error) { return devicemapper.LinearTarget("/dev/pmem0", 8388608, 4194304) },
			want:  devicemapper.Target{Length: 8192, Type: "linear", Params: "/dev/pmem0 16384"},
		},
		{
			name:    "linear unaligned",
			build:   func() (devicemapper.Target, error) { return devicemapper.LinearTarget("/dev/pmem0", 100, 4096) },
			wantErr: devicemapper.ErrBadTarget,
		},
		{
			name:    "linear device with space",
			build:   func() (devicemapper.Target, error) { return devicemapper.LinearTarget("/dev/x 0 /dev/y", 0, 4096) },
			wantErr: devicemapper.ErrBadTarget,
		},
		{
			name: "verity",
			build: func() (devicemapper.Target, error) {
				return devicemapper.VerityTarget("/dev/sdb", devicemapper.Verity{Version: 1, DataBytes: 4096 * 10, BlockSize: 4096, HashOffset: 11, Algorithm: "sha256", RootDigest: "abcd", Salt: "00ff"})
			},
			want: devicemapper.Target{Length: 80, Type: "verity", Params: "1 /dev/sdb /dev/sdb 4096 4096 10 11 sha256 abcd 00ff"},
		},
		{
			name: "verity bad digest",
			build: func() (devicemapper.Target, error) {
				return devicemapper.VerityTarget("/dev/sdb", devicemapper.Verity{Version: 1, DataBytes: 4096, BlockSize: 4096, Algorithm: "sha256", RootDigest: "zz 1"})
			},
			wantErr: devicemapper.ErrBadTarget,
		},
		{
			name: "crypt rounds to 4k sectors",
			build: func() (devicemapper.Target, error) {
				return devicemapper.CryptTarget("/dev/sdc", make([]byte, 64), 1001)
			},
			want: devicemapper.Target{Length: 1000, Type: "crypt", Params: "aes-xts-plain64 " + string(bytes.Repeat([]byte("0"), 128)) + " 0 /dev/sdc 0 1 sector_size:4096"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.build()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCreateRejectsNames(t *testing.T) {
	m := devicemapper.New(storagetest.FakeRoots(t))
	tgt := devicemapper.Target{Length: 8, Type: "linear", Params: "/dev/loop0 0"}
	for _, name := range []string{"", "..", "a/b", "../../etc/x", "control", string(make([]byte, 200))} {
		if _, err := m.Create(context.Background(), name, true, []devicemapper.Target{tgt}); !errors.Is(err, devicemapper.ErrBadName) {
			t.Errorf("Create(%q) = %v, want ErrBadName", name, err)
		}
	}
}

func TestLinearRoundTrip(t *testing.T) {
	storagetest.RequireDeviceMapper(t, "opengcs-test-")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	img := storagetest.SparseFile(t, "d.img", 1<<20)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096/16)
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 65536); err != nil {
		t.Fatal(err)
	}
	f.Close()
	loop := storagetest.Loop(t, img, true)
	roots := storagetest.FakeRoots(t)
	m := devicemapper.New(roots)
	tgt, err := devicemapper.LinearTarget(loop, 65536, 4096)
	if err != nil {
		t.Fatal(err)
	}
	path, err := m.Create(ctx, "opengcs-test-linear", true, []devicemapper.Target{tgt})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _ = m.Remove(ctx, "opengcs-test-linear") })
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through linear device: %d bytes, %v", len(got), err)
	}
	if err := m.Remove(ctx, "opengcs-test-linear"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node not removed")
	}
}
