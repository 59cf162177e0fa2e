package vm

import (
	"errors"
	"os"
	"testing"
)

func TestMemoryInUse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"meminfo", "MemTotal:         230000 kB\nMemFree:          150000 kB\nMemAvailable:     160000 kB\nHugePages_Total:       0\n", 70000 * 1024, false},
		{"no MemAvailable", "MemTotal:         230000 kB\n", 0, true},
		{"empty", "", 0, true},
		{"bad number", "MemTotal: x kB\nMemAvailable: 1 kB\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MemoryInUse(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrGuestCommand) {
					t.Fatalf("err %v, want ErrGuestCommand", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestRunsOnImage(t *testing.T) {
	tests := []struct {
		prog string
		want error
	}{
		{"/usr/bin/unshare", nil},                      // libc only
		{"/usr/bin/qemu-system-x86_64", ErrNotInImage}, // glib, pixman, ...
	}
	for _, tc := range tests {
		t.Run(tc.prog, func(t *testing.T) {
			if _, err := os.Stat(tc.prog); err != nil {
				t.Skipf("%s not installed", tc.prog)
			}
			if _, err := os.Stat("/usr/sbin/chronyd"); err != nil {
				t.Skip("the image's programs are not installed")
			}
			if err := RunsOnImage(tc.prog); !errors.Is(err, tc.want) {
				t.Fatalf("RunsOnImage(%s) = %v, want %v", tc.prog, err, tc.want)
			}
		})
	}
}
