package poweroff_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/internal/poweroff"
)

func TestPowerOffTwice(t *testing.T) {
	errBusy := errors.New("busy")
	tests := []struct {
		name    string
		reboot  error
		calls   int
		wantErr error
	}{
		{"succeeds twice", nil, 2, nil},
		{"fails twice", errBusy, 2, errBusy},
		{"many calls", nil, 5, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var syncs, reboots atomic.Int32
			s := poweroff.New(poweroff.Options{
				Sync: func() { syncs.Add(1) },
				Reboot: func(cmd int) error {
					if cmd != unix.LINUX_REBOOT_CMD_POWER_OFF {
						t.Errorf("reboot cmd %#x, want POWER_OFF", cmd)
					}
					reboots.Add(1)
					return tc.reboot
				},
			})
			select {
			case <-s.Done():
				t.Fatal("Done closed before any PowerOff")
			default:
			}
			for i := 0; i < tc.calls; i++ {
				if err := s.PowerOff(); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Fatalf("call %d: %v, want %v", i+1, err, tc.wantErr)
				}
				select {
				case <-s.Done():
				default:
					t.Fatalf("Done not closed after call %d", i+1)
				}
			}
			if int(syncs.Load()) != tc.calls || int(reboots.Load()) != tc.calls {
				t.Fatalf("%d syncs and %d reboots for %d calls", syncs.Load(), reboots.Load(), tc.calls)
			}
		})
	}
}

func TestPowerOffConcurrent(t *testing.T) {
	s := poweroff.New(poweroff.Options{Sync: func() {}, Reboot: func(int) error { return nil }})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.PowerOff(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	<-s.Done()
}
