package load

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The goroutine engine counts an answer's body as the epoll engine does,
// without keeping it: a run of large answers allocates what a run of tiny
// ones does plus the framer's read buffers (at most 64 KiB a connection),
// not a body-sized buffer per connection.
func TestGoroutineEngineKeepsNoAnswerBody(t *testing.T) {
	const size = 900 << 10
	allocated := func(bodySize int) uint64 {
		answer := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bodySize, strings.Repeat("x", bodySize)))
		srv := startRaw(t, func(conn net.Conn, _ int64) bool {
			_, err := conn.Write(answer)
			return err == nil
		})
		r := engineREST(t, EngineGoroutines, srv.url, 10*time.Second)
		rec := NewRecorder()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 20}, r, counter(1), rec); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if s := rec.Snapshot(false).Steady; s.Requests != 20 || len(s.Errors) != 0 {
			t.Fatalf("%d requests, errors %v", s.Requests, s.Errors)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := allocated(2), allocated(size)
	t.Logf("allocated %d bytes for 2-byte answers, %d for %d-byte ones", small, large, size)
	if large > small+size/2 {
		t.Fatalf("20 answers of %d bytes on 2 connections allocated %d bytes more than answers of 2 bytes: the bodies were kept", size, large-small)
	}
}
