package vhostuser

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

type mappedRegion struct {
	Region
	mapping []byte // the whole mmap (from fd offset 0), for munmap
	data    []byte // the region's bytes within mapping
}

// Memory is the guest memory described by one SET_MEM_TABLE: each region
// mapped shared from the fd the front-end passed. Addresses handed to
// Slice are guest-physical.
type Memory struct {
	regions []mappedRegion
}

// MapMemory maps regions, one fd each (the fds stay owned by the caller
// and may be closed after the call).
func MapMemory(regions []Region, fds []int) (*Memory, error) {
	if len(regions) != len(fds) {
		return nil, fmt.Errorf("%d regions with %d fds: %w", len(regions), len(fds), ErrBadRegion)
	}
	m := &Memory{}
	for i, r := range regions {
		end := r.MmapOffset + r.Size
		if r.Size == 0 || end < r.MmapOffset || r.GuestPhys+r.Size < r.GuestPhys || r.UserAddr+r.Size < r.UserAddr || end > 1<<48 {
			m.Close()
			return nil, fmt.Errorf("region %d %+v: %w", i, r, ErrBadRegion)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fds[i], &st); err != nil {
			m.Close()
			return nil, fmt.Errorf("region %d: fstat: %w", i, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG && uint64(st.Size) < end {
			m.Close()
			return nil, fmt.Errorf("region %d ends at %#x beyond its file (%d bytes): %w", i, end, st.Size, ErrBadRegion)
		}
		b, err := unix.Mmap(fds[i], 0, int(end), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("region %d: mmap %d bytes: %w", i, end, err)
		}
		m.regions = append(m.regions, mappedRegion{Region: r, mapping: b, data: b[r.MmapOffset:end:end]})
	}
	return m, nil
}

// Close unmaps every region. Slices from Slice must not be used after.
func (m *Memory) Close() error {
	var first error
	for _, r := range m.regions {
		if err := unix.Munmap(r.mapping); err != nil && first == nil {
			first = os.NewSyscallError("munmap", err)
		}
	}
	m.regions = nil
	return first
}

// Slice returns the n bytes of guest memory at guest-physical addr. The
// range must lie within one region.
func (m *Memory) Slice(addr, n uint64) ([]byte, error) {
	for _, r := range m.regions {
		if addr >= r.GuestPhys && addr-r.GuestPhys < r.Size {
			off := addr - r.GuestPhys
			if n > r.Size-off {
				break
			}
			return r.data[off : off+n : off+n], nil
		}
	}
	return nil, fmt.Errorf("guest address %#x+%d: %w", addr, n, ErrNotMapped)
}

// UserToGuest translates a front-end virtual address (as SET_VRING_ADDR
// carries them) to a guest-physical one.
func (m *Memory) UserToGuest(uva uint64) (uint64, error) {
	for _, r := range m.regions {
		if uva >= r.UserAddr && uva-r.UserAddr < r.Size {
			return r.GuestPhys + (uva - r.UserAddr), nil
		}
	}
	return 0, fmt.Errorf("front-end address %#x: %w", uva, ErrNotMapped)
}
