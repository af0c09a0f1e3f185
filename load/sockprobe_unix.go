//go:build unix

package load

import (
	"net"
	"syscall"
)

// socketProbe looks at a TCP socket without reading from it: one recv(2)
// with MSG_PEEK on the non-blocking socket, through syscall.RawConn so
// that Go's poller keeps the descriptor. It is built once per sender, the
// peek function too, so that a look allocates nothing.
type socketProbe struct {
	raw  syscall.RawConn
	peek func(fd uintptr) bool
	buf  [1]byte
	n    int
	err  error
}

// attach makes the probe look at conn's socket from now on.
func (p *socketProbe) attach(conn net.Conn) {
	p.raw = nil
	if sc, ok := conn.(syscall.Conn); ok {
		p.raw, _ = sc.SyscallConn()
	}
	if p.peek == nil {
		p.peek = func(fd uintptr) bool {
			for {
				p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK)
				if p.err != syscall.EINTR {
					return true // never wait for readiness: only look
				}
			}
		}
	}
}

// state reports what waits on the socket. The connection's read deadline
// must not have passed (Go's poller would not call the peek).
func (p *socketProbe) state() socketState {
	if p.raw == nil {
		return socketUnknown
	}
	if err := p.raw.Read(p.peek); err != nil {
		return socketClosed // closed on our side, or no longer usable
	}
	switch {
	case p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK:
		return socketQuiet
	case p.err == nil && p.n > 0:
		return socketBytes
	}
	return socketClosed // end of stream (n == 0) or a socket error such as a reset
}
