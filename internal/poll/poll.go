package poll

import (
	"context"
	"time"
)

// Until calls check every interval until it reports done or an error, or
// ctx ends (then ctx's error is returned). check runs once at once.
func Until(ctx context.Context, interval time.Duration, check func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
