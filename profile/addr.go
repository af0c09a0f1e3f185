package profile

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// DefaultPort is where TF Serving serves gRPC, the ProfilerService included.
const DefaultPort = "8500"

// NormalizeAddr reads a ProfilerService address as people write it:
// HOST:PORT, HOST alone (port 8500, TF Serving's gRPC port), or either
// behind grpc:// (the form TensorFlow's profiler documentation uses). An
// http(s):// URL is refused: the profiler speaks gRPC.
func NormalizeAddr(s string) (string, error) {
	addr := strings.TrimSpace(s)
	switch {
	case addr == "":
		return "", fmt.Errorf("%q: give HOST:PORT of the server's gRPC port (8500 on TF Serving)", s)
	case strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://"):
		return "", fmt.Errorf("%q: the ProfilerService speaks gRPC: give HOST:PORT of the server's gRPC port (8500 on TF Serving), not a URL", s)
	}
	addr = strings.TrimPrefix(addr, "grpc://")
	addr = strings.TrimSuffix(addr, "/")
	if strings.Contains(addr, "/") {
		return "", fmt.Errorf("%q: want HOST:PORT, without a path", s)
	}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		if port == "" {
			return "", fmt.Errorf("%q: empty port", s)
		}
		return addr, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("%q: want HOST:PORT", s)
	}
	return net.JoinHostPort(host, DefaultPort), nil
}

// Reachable waits until conn has a working connection to the server (TCP
// and the HTTP/2 handshake done), for at most wait: a check before any
// load is sent that the profiler can be reached at all. It does not open
// a window.
func Reachable(ctx context.Context, conn *grpc.ClientConn, addr string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	conn.Connect()
	for {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return &Error{Addr: addr, Msg: "the connection was closed"}
		case connectivity.TransientFailure:
			return &Error{Addr: addr, Msg: "unreachable (nothing answers gRPC there; TF Serving's gRPC port is 8500)"}
		}
		if !conn.WaitForStateChange(ctx, state) {
			if ctx.Err() == context.DeadlineExceeded {
				return &Error{Addr: addr, Msg: fmt.Sprintf("no gRPC connection within %v (does the port speak gRPC?)", wait)}
			}
			return &Error{Addr: addr, Msg: "interrupted", Err: ctx.Err()}
		}
	}
}
