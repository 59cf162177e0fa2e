package vm

import (
	"context"
	"fmt"
	"time"

	"github.com/hugelgupf/p9/fsimpl/localfs"
	"github.com/hugelgupf/p9/p9"
)

// ServePlan9 serves the host directory dir over 9P2000.L on vsock port
// port (the hybrid socket <prefix>_<port>), which the gcs dials for a
// MappedDirectory and mounts with trans=fd. The server is
// github.com/hugelgupf/p9 with its localfs back-end (docs/vsock.md says
// why). The returned function stops it.
func (v *VsockVM) ServePlan9(port uint32, dir string) (func(), error) {
	l, err := v.Transport.Listen(port)
	if err != nil {
		return nil, fmt.Errorf("listen for 9p on port %d: %w", port, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p9.NewServer(localfs.Attacher(dir)).ServeContext(ctx, l)
	}()
	return func() {
		cancel()
		l.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}, nil
}
