//go:build linux

package load

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A name whose first address refuses connections: the epoll engine uses
// the address that answers, as Go's dialer (and the goroutine engine) do.
func TestEpollEngineConnectsToTheAddressThatAnswers(t *testing.T) {
	srv := startRaw(t, okJSON(0)) // 127.0.0.1 only
	closed, _ := net.Listen("tcp", "127.0.0.2:0")
	if closed == nil {
		t.Skip("no 127.0.0.2 here")
	}
	closed.Close() // nothing listens on 127.0.0.2 now
	lookupIP = func(host string) ([]net.IP, error) {
		if host == "dual.test" {
			return []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.1")}, nil
		}
		return net.LookupIP(host)
	}
	defer func() { lookupIP = net.LookupIP }()
	url := strings.Replace(srv.url, "127.0.0.1", "dual.test", 1)
	rec := NewRecorder()
	if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 20}, engineREST(t, EngineEpoll, url, 5*time.Second), counter(1), rec); err != nil {
		t.Fatal(err)
	}
	if s := rec.Snapshot(true).Steady; s.Requests != 20 || len(s.Errors) != 0 {
		t.Fatalf("%d requests, errors %v (%v)", s.Requests, s.Errors, rec.Snapshot(true).FirstErrors)
	}
}

// On a kernel without epoll_pwait2 the loops time requests with their
// timerfd: the same requests go out, the first steady one on time.
func TestEpollEngineKeepsTheScheduleWithTimerfd(t *testing.T) {
	usePwait2 = false
	defer func() { usePwait2 = true }()
	openLoopOf350(t, EngineEpoll)
}
