//go:build !unix

package load

import "net"

// socketProbe cannot look at sockets on this platform; stale connections
// are found when a request fails on them (see restSender.roundTrip).
type socketProbe struct{}

func (p *socketProbe) attach(net.Conn) {}

func (p *socketProbe) state() socketState { return socketUnknown }
