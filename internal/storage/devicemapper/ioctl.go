package devicemapper

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout of struct dm_ioctl and struct dm_target_spec (linux/dm-ioctl.h).
const (
	headerSize     = 312
	targetSpecSize = 40
	offFlags       = 28
	offDev         = 40
	offName        = 48
	nameLen        = unix.DM_NAME_LEN
	typeLen        = 16
	// Interface version we speak; the kernel accepts any 4.x >= this.
	versionMajor = 4
)

// request is one marshalled dm_ioctl with its payload.
type request struct {
	name    string
	flags   uint32
	targets []Target
}

// marshal lays out the dm_ioctl header followed by the target specs.
func (r request) marshal() ([]byte, error) {
	if len(r.name) == 0 || len(r.name) >= nameLen {
		return nil, fmt.Errorf("%q: %w", r.name, ErrBadName)
	}
	buf := make([]byte, headerSize)
	for _, t := range r.targets {
		if t.Type == "" || len(t.Type) >= typeLen {
			return nil, fmt.Errorf("type %q: %w", t.Type, ErrBadTarget)
		}
		spec := make([]byte, targetSpecSize)
		binary.LittleEndian.PutUint64(spec[0:], t.Start)
		binary.LittleEndian.PutUint64(spec[8:], t.Length)
		copy(spec[24:24+typeLen], t.Type)
		params := append([]byte(t.Params), 0)
		for (len(spec)+len(params))%8 != 0 {
			params = append(params, 0)
		}
		binary.LittleEndian.PutUint32(spec[20:], uint32(len(spec)+len(params)))
		buf = append(buf, spec...)
		buf = append(buf, params...)
	}
	le := binary.LittleEndian
	le.PutUint32(buf[0:], versionMajor)
	le.PutUint32(buf[12:], uint32(len(buf)))       // data_size
	le.PutUint32(buf[16:], headerSize)             // data_start
	le.PutUint32(buf[20:], uint32(len(r.targets))) // target_count
	le.PutUint32(buf[offFlags:], r.flags)
	copy(buf[offName:offName+nameLen], r.name)
	return buf, nil
}

// do sends one dm ioctl on the control device and returns the kernel's
// reply buffer.
func do(control *os.File, cmd uintptr, r request) ([]byte, error) {
	buf, err := r.marshal()
	if err != nil {
		return nil, err
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, control.Fd(), cmd, uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return nil, errno
	}
	return buf, nil
}

// replyDev extracts the device number of the reply.
func replyDev(buf []byte) uint64 { return binary.LittleEndian.Uint64(buf[offDev:]) }
