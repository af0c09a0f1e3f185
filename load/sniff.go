package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"
)

// Sniff connects to the REST target once, sends the first payload's
// request and says what kind of server the first bytes of the answer come
// from, when that explains a failure better than the error does: an
// HTTP/2 server (TF Serving's gRPC port, 8500, is the usual mistake), a
// TLS server, or bytes that are not HTTP at all. It returns "" for an
// HTTP/1.x answer or when nothing can be learnt.
func (r *REST) Sniff(ctx context.Context) string {
	if r.tls != nil {
		return "" // an https:// target: the handshake error says enough
	}
	wait := min(r.cfg.Timeout, 2*time.Second)
	d := net.Dialer{Timeout: wait}
	conn, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(wait))
	_, _ = conn.Write(r.requests[0])
	buf := make([]byte, 64)
	n := 0
	for n < len(buf) {
		m, err := conn.Read(buf[n:])
		n += m
		if err != nil || n >= 9 {
			break
		}
	}
	return DescribeAnswer(buf[:n])
}

// DescribeAnswer names the protocol of the first bytes a server sent to
// an HTTP/1.1 request, or returns "" when they are HTTP/1.x or nothing.
func DescribeAnswer(first []byte) string {
	switch {
	case len(first) == 0 || bytes.HasPrefix(first, []byte("HTTP/")):
		return ""
	case len(first) >= 9 && first[3] == 0x04 && first[5]|first[6]|first[7]|first[8] == 0:
		// An HTTP/2 frame header: 3 bytes of length, type 4 (SETTINGS),
		// flags, stream 0: the server's preface.
		return "this port speaks HTTP/2, as gRPC does (TF Serving's gRPC port is 8500, REST 8501): for gRPC use bench.Config.GRPC.Addr HOST:PORT bench.Config.GRPC.Model NAME"
	case len(first) >= 2 && (first[0] == 0x15 || first[0] == 0x16) && first[1] == 0x03:
		return "this port speaks TLS: use an https:// URL"
	}
	return fmt.Sprintf("this port answered with bytes that are not HTTP: %q", first)
}
