//go:build linux

package load

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// In an open loop the epoll engine reads an answer in the wake-up of the
// next request due, not when it arrives, and times it by its arrival (the
// kernel's receive stamp): one wake-up a request, and the latency is what
// the server took, not when the loop got round to reading it. The server
// answers after 2 ms; requests go out every 20 ms, so each answer is read
// about 18 ms after it came.
func TestEpollEngineTimesAnswersReadLateByTheirArrival(t *testing.T) {
	harvestWithin = 50 * time.Millisecond
	defer func() { harvestWithin = time.Millisecond }()
	rec := NewRecorder()
	type span struct{ before, after time.Duration }
	var mu sync.Mutex
	var writes []span // when the server wrote each answer, on the run's clock
	srv := startRaw(t, func(conn net.Conn, _ int64) bool {
		time.Sleep(2 * time.Millisecond)
		before := rec.Now()
		_, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
		after := rec.Now()
		mu.Lock()
		writes = append(writes, span{before, after})
		mu.Unlock()
		return err == nil
	})
	rec.SetWindow(true) // keeps every request's times
	waitsBefore := loopWaits.Load()
	const requests = 20
	if _, err := Run(context.Background(), Plan{Rate: 50, Requests: requests, MaxInflight: 4}, engineREST(t, EngineEpoll, srv.url, 5*time.Second), counter(1), rec); err != nil {
		t.Fatal(err)
	}
	samples := rec.WindowSamples()
	// The server notes a write after it returns, which may be after the
	// client has read the answer and finished.
	var written []span
	for wait := time.Now(); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		written = slices.Clone(writes)
		mu.Unlock()
		if len(written) >= requests || time.Since(wait) > 5*time.Second {
			break
		}
	}
	if len(samples) != requests || len(written) != requests {
		t.Fatalf("%d samples, %d answers written, want %d", len(samples), len(written), requests)
	}
	// An answer's stamp is taken on its way into the client's socket,
	// inside the server's write on loopback; a millisecond covers the two
	// clocks' reading, far less than the 18 ms the answer waited unread.
	const slack = time.Millisecond
	for _, s := range samples {
		matched := false
		for _, w := range written {
			if s.Done >= w.before-slack && s.Done <= w.after+slack && w.before >= s.Sent {
				matched = true
			}
		}
		if !matched {
			t.Errorf("answer to the request sent at %v timed at %v: no server write within %v of that", s.Sent, s.Done, slack)
		}
	}
	// Without the late harvest the loop wakes twice a request: at its
	// due time and at its answer.
	if waits := loopWaits.Load() - waitsBefore; waits > requests*3/2 {
		t.Errorf("the loop waited %d times for %d requests, want about one wait a request", waits, requests)
	}
}

// Each loop's thread waits with the plan's send slack as its timer slack,
// the default when the plan has none, and gets the thread's own back
// after the run.
func TestEpollEngineWaitsWithThePlansSendSlack(t *testing.T) {
	srv := startRaw(t, okJSON(0))
	var mu sync.Mutex
	var slacks []time.Duration
	loopThreadStarted = func() {
		ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		slacks = append(slacks, time.Duration(ns))
		mu.Unlock()
	}
	defer func() { loopThreadStarted = nil }()
	for _, tc := range []struct{ plan, want time.Duration }{{0, DefaultSendSlack}, {3 * time.Millisecond, 3 * time.Millisecond}, {time.Nanosecond, time.Nanosecond}} {
		slacks = nil
		plan := Plan{Rate: 1000, Requests: 5, MaxInflight: 4, SendSlack: tc.plan}
		if _, err := Run(context.Background(), plan, engineREST(t, EngineEpoll, srv.url, 5*time.Second), counter(1), NewRecorder()); err != nil {
			t.Fatal(err)
		}
		if len(slacks) == 0 {
			t.Fatalf("SendSlack %v: no loop started", tc.plan)
		}
		for _, got := range slacks {
			if got != tc.want {
				t.Errorf("SendSlack %v: a loop waited with a timer slack of %v, want %v", tc.plan, got, tc.want)
			}
		}
	}
}

// While the open loop waits without its connections' answers, a server
// that closes an idle connection wakes it: the loop drops the connection
// before the next request is due, so no request goes out on a closed
// connection and has to be sent again. The server answers in 1 ms and
// closes a connection idle for 5 ms; requests go out every 50 ms, each on
// a new connection. (Only a server delayed by 45 ms closes a connection
// as a request goes out on it, which the resend is for.)
func TestEpollEngineDropsConnectionsClosedDuringAQuietWait(t *testing.T) {
	harvestWithin = 50 * time.Millisecond
	defer func() { harvestWithin = time.Millisecond }()
	h := hostile{delay: time.Millisecond, idle: 5 * time.Millisecond}
	srv := startHostile(t, h)
	rest := hostileREST(t, EngineEpoll, srv, nil)
	rec := NewRecorder()
	const requests = 10
	waitsBefore := loopWaits.Load()
	if _, err := Run(context.Background(), Plan{Rate: 20, Requests: requests, MaxInflight: 4}, rest, counter(1), rec); err != nil {
		t.Fatal(err)
	}
	if s := rec.Snapshot(true).Steady; s.Requests != requests || len(s.Errors) != 0 {
		t.Fatalf("%d requests, errors %v", s.Requests, s.Errors)
	}
	if srv.idleCloses.Load() == 0 {
		t.Fatal("the server closed no idle connection: the test tested nothing")
	}
	if got := rest.resent.Load(); got > requests/5 {
		t.Errorf("%d of %d requests sent again: they went out on connections the server had closed", got, requests)
	}
	if got := srv.requests.Load(); got != requests {
		t.Errorf("the server read %d requests, want %d", got, requests)
	}
	// A few waits a request (its due time, the close, the answer read
	// and the idle connection dropped after it): a close that is still
	// pending must not make every quiet wait return at once.
	if waits := loopWaits.Load() - waitsBefore; waits > 6*requests {
		t.Errorf("the loop waited %d times for %d requests: it spins on a close", waits, requests)
	}
}
