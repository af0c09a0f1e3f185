//go:build !linux

package load

import (
	"context"
	"errors"
)

// eventLoopsAvailable reports whether this platform has the epoll engine.
const eventLoopsAvailable = false

func (r *REST) useEventLoops() bool { return false }

func (r *runner) runEventLoops(ctx context.Context, rest *REST) error {
	return errors.New("the epoll engine needs Linux")
}
