//go:build !linux

package load

// eventLoopsAvailable reports whether this platform has the epoll engine.
const eventLoopsAvailable = false

// ownEngine is nil: NewREST chooses the epoll engine on Linux only.
func (r *REST) ownEngine() engine { return nil }
