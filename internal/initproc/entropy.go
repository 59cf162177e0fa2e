package initproc

import (
	"context"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/opengcs/opengcs/service/gcs/transport"
)

// EntropyChunk is the largest piece handed to the kernel at once.
const EntropyChunk = 4096

// AddEntropyFunc credits b to the kernel's random pool.
type AddEntropyFunc func(b []byte) error

// randPoolInfo mirrors struct rand_pool_info with its buffer.
type randPoolInfo struct {
	entropyCount int32
	bufSize      int32
	buf          [EntropyChunk]byte
}

// RandomDevice returns an AddEntropyFunc feeding the device at path
// (normally /dev/random) with RNDADDENTROPY, crediting 8 bits per byte.
func RandomDevice(path string) (AddEntropyFunc, func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	add := func(b []byte) error {
		var info randPoolInfo
		n := copy(info.buf[:], b)
		info.entropyCount = int32(8 * n)
		info.bufSize = int32(n)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info)))
		if errno != 0 {
			return fmt.Errorf("RNDADDENTROPY: %w", errno)
		}
		return nil
	}
	return add, f.Close, nil
}

// FeedEntropy reads from r until EOF and adds each chunk (at most
// EntropyChunk bytes). It returns the number of bytes added.
func FeedEntropy(r io.Reader, add AddEntropyFunc) (int, error) {
	buf := make([]byte, EntropyChunk)
	total := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if aerr := add(buf[:n]); aerr != nil {
				return total, aerr
			}
			total += n
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read entropy: %w", err)
		}
	}
}

// Entropy connects to the host's entropy port and feeds what it sends.
func Entropy(ctx context.Context, tr transport.Transport, port uint32, add AddEntropyFunc) (int, error) {
	conn, err := tr.Dial(ctx, port)
	if err != nil {
		return 0, fmt.Errorf("entropy port %d: %w", port, err)
	}
	defer conn.Close()
	return FeedEntropy(conn, add)
}
