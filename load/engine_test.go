package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The REST engines must behave the same: every test here runs on both.
func engines(t *testing.T) []Engine {
	if eventLoopsAvailable {
		return []Engine{EngineGoroutines, EngineEpoll}
	}
	return []Engine{EngineGoroutines}
}

// rawServer is a loopback HTTP/1.1 server whose answers the test writes
// byte for byte, so that framing, closes and resets are under its control.
type rawServer struct {
	url      string
	ln       net.Listener
	requests atomic.Int64
	conns    atomic.Int64
	active   atomic.Int64
	peak     atomic.Int64

	mu     sync.Mutex
	bodies map[string]int
}

// answer handles request number n (from 1) on conn; it returns false to
// stop serving the connection (the server then closes it).
type answer func(conn net.Conn, n int64) bool

// acceptAll serves every connection ln accepts with handle (n counts them
// from 1) until the test ends; then it closes ln and the connections and
// waits for the handlers.
func acceptAll(t *testing.T, ln net.Listener, handle func(conn net.Conn, n int64)) {
	var wg sync.WaitGroup
	var open sync.Map
	var accepted atomic.Int64
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			open.Store(conn, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				handle(conn, n)
			}()
		}
	}()
}

func startRaw(t *testing.T, respond answer) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String() + "/v1/models/m:predict", ln: ln, bodies: map[string]int{}}
	acceptAll(t, ln, func(conn net.Conn, _ int64) {
		s.conns.Add(1)
		br := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.bodies[string(body)]++
			s.mu.Unlock()
			raiseTo(&s.peak, s.active.Add(1))
			keep := respond(conn, s.requests.Add(1))
			s.active.Add(-1)
			if !keep {
				return
			}
		}
	})
	return s
}

// received returns how many times each body arrived. It locks because the
// race detector cannot see that a body was recorded before its answer
// went out through the socket.
func (s *rawServer) received() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.bodies)
}

func okJSON(delay time.Duration) answer {
	return func(conn net.Conn, _ int64) bool {
		time.Sleep(delay)
		_, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"predictions\": [1.5]}")
		return err == nil
	}
}

func engineREST(t *testing.T, engine Engine, url string, timeout time.Duration) *REST {
	t.Helper()
	r, err := NewREST(RESTConfig{URL: url, Engine: engine, Timeout: timeout, MaxResponseBytes: 1 << 20,
		Bodies: [][]byte{[]byte(`{"instances": [0]}`), []byte(`{"instances": [1]}`), []byte(`{"instances": [2]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Engine() != engine {
		t.Fatalf("engine %s, asked for %s", r.Engine(), engine)
	}
	t.Cleanup(r.Close)
	return r
}

// openLoopOf350 sends 50 warm-up and 300 steady requests at 2000/s, three
// payloads in turn, to a server answering in 1 ms, and checks that exactly
// those were sent, each payload as often as its turn comes, the first
// steady one at its intended time.
func openLoopOf350(t *testing.T, engine Engine) *rawServer {
	t.Helper()
	srv := startRaw(t, okJSON(time.Millisecond))
	rec := NewRecorder()
	plan := Plan{Rate: 2000, WarmupRequests: 50, Requests: 300, MaxInflight: 100}
	timing, err := Run(context.Background(), plan, engineREST(t, engine, srv.url, 5*time.Second), counter(3), rec)
	if err != nil {
		t.Fatal(err)
	}
	snap := rec.Snapshot(true)
	if snap.Warmup.Requests != 50 || snap.Steady.Requests != 300 || srv.requests.Load() != 350 || timing.Dispatched != 350 {
		t.Fatalf("warmup %d steady %d served %d dispatched %d", snap.Warmup.Requests, snap.Steady.Requests, srv.requests.Load(), timing.Dispatched)
	}
	if len(snap.Steady.Errors) != 0 || len(snap.Warmup.Errors) != 0 {
		t.Fatalf("errors %v %v (%v)", snap.Steady.Errors, snap.Warmup.Errors, snap.FirstErrors)
	}
	want := map[string]int{`{"instances": [0]}`: 117, `{"instances": [1]}`: 117, `{"instances": [2]}`: 116}
	if got := srv.received(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("payload rotation %v", got)
	}
	if got := snap.Steady.FirstAt; got != 25*time.Millisecond {
		t.Fatalf("first steady intended send at %v, want 25ms", got)
	}
	return srv
}

func TestEnginesOpenLoopSendExactCountsPerPhaseAtIntendedTimes(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := openLoopOf350(t, engine)
			t.Logf("%d connections", srv.conns.Load())
			// 2000/s at 1 ms each is 2 requests in flight on average: a few
			// connections, kept alive, not one per request. A hiccup of a
			// busy machine makes every request due during it leave at once
			// when it ends, each on a connection of its own (the loop is
			// open), so the bound is --max-inflight's 100, which must hold.
			if n := srv.conns.Load(); n < 1 || n > 100 {
				t.Fatalf("%d connections for 350 requests, 2 in flight on average, --max-inflight 100", n)
			}
		})
	}
}

func TestEnginesClosedLoopKeepConcurrencyOnKeptAliveConnections(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(2*time.Millisecond))
			rec := NewRecorder()
			timing, err := Run(context.Background(), Plan{Concurrency: 4, Requests: 200}, engineREST(t, engine, srv.url, 5*time.Second), counter(3), rec)
			if err != nil {
				t.Fatal(err)
			}
			if n := rec.Snapshot(true).Steady.Requests; n != 200 || srv.requests.Load() != 200 {
				t.Fatalf("steady requests %d, served %d", n, srv.requests.Load())
			}
			if timing.PeakInflight != 4 || srv.peak.Load() != 4 || srv.conns.Load() != 4 {
				t.Fatalf("peak in flight %d, at the server %d, connections %d; want 4 each", timing.PeakInflight, srv.peak.Load(), srv.conns.Load())
			}
		})
	}
}

func TestEnginesReportStallLatencyFromIntendedStart(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			// One request in flight at a time, 200 ms each, one due every
			// 10 ms: request i waited i*190 ms before it could be sent.
			srv := startRaw(t, okJSON(200*time.Millisecond))
			rec := NewRecorder()
			timing, err := Run(context.Background(), Plan{Rate: 100, Requests: 5, MaxInflight: 1}, engineREST(t, engine, srv.url, 5*time.Second), counter(1), rec)
			if err != nil {
				t.Fatal(err)
			}
			h := rec.Snapshot(true).Steady.Histogram
			if h.Max() < 950_000 || h.TotalCount() != 5 {
				t.Fatalf("max latency %d us over %d requests, want about 5*200ms - 4*10ms = 960ms", h.Max(), h.TotalCount())
			}
			if timing.Saturated == 0 || srv.conns.Load() != 1 {
				t.Fatalf("saturated %d, connections %d: --max-inflight 1 was not kept", timing.Saturated, srv.conns.Load())
			}
		})
	}
}

func TestEnginesInterruptedRunStopsWaitingAfterGrace(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(3*time.Second))
			rec := NewRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			timing, err := Run(ctx, Plan{Concurrency: 2, Duration: time.Minute, Grace: 200 * time.Millisecond}, engineREST(t, engine, srv.url, 10*time.Second), counter(1), rec)
			if err != nil {
				t.Fatal(err)
			}
			if !timing.Interrupted || timing.Unfinished != 2 || timing.Dispatched != 2 {
				t.Fatalf("interrupted %v unfinished %d dispatched %d", timing.Interrupted, timing.Unfinished, timing.Dispatched)
			}
			if waited := time.Since(start); waited > 2*time.Second {
				t.Fatalf("waited %v for requests in flight, grace was 200ms", waited)
			}
		})
	}
}

func TestEnginesHoldKeepsSteadyLoadRunningPastDuration(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(0))
			rec := NewRecorder()
			hold := make(chan struct{})
			time.AfterFunc(400*time.Millisecond, func() { close(hold) })
			plan := Plan{Rate: 500, Duration: 100 * time.Millisecond, MaxInflight: 10, Hold: hold}
			if _, err := Run(context.Background(), plan, engineREST(t, engine, srv.url, 5*time.Second), counter(1), rec); err != nil {
				t.Fatal(err)
			}
			if n := rec.Snapshot(true).Steady.Requests; n < 150 {
				t.Fatalf("steady requests %d: the load stopped before the hold was released", n)
			}
		})
	}
}

// Responses framed every way HTTP/1.1 allows, written in small pieces.
func TestEnginesFrameEveryKindOfResponse(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	cases := []struct {
		name     string
		response string
		close    bool // the server closes after answering
		code     int
		sample   string // an error's first message, from its body
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, ""},
		{"large body", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big), false, 200, ""},
		{"chunked with extensions and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Checksum: 1\r\n\r\n", false, 200, ""},
		{"large chunked", fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big), false, 200, ""},
		{"interim 100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false, 200, ""},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, ""},
		{"error status with body", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 21\r\n\r\n{\"error\": \"overload\"}", false, 503, `HTTP 503: {"error": "overload"}`},
		{"chunked error", "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nmodel \r\n9\r\nnot found\r\n0\r\n\r\n", false, 404, "HTTP 404: model not found"},
		{"error until close", "HTTP/1.1 500 Internal Server Error\r\n\r\nout of\n memory\x00", true, 500, "HTTP 500: out of memory?"},
		{"long error", fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s", 3000, strings.Repeat("y", 3000)), false, 400, "HTTP 400: " + strings.Repeat("y", 200)},
		{"empty error", "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n", false, 429, "HTTP 429 (no body)"},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", true, 200, ""},
		{"HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", true, 200, ""},
		{"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}", false, 200, ""},
		{"body until close", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"predictions\": []}", true, 200, ""},
	}
	for _, engine := range engines(t) {
		for _, c := range cases {
			t.Run(string(engine)+"/"+c.name, func(t *testing.T) {
				srv := startRaw(t, func(conn net.Conn, n int64) bool {
					// Pieces of varying size, so that every part of a
					// response sometimes arrives split.
					b := []byte(c.response)
					for step := int(n%7) + 1; len(b) > 0; step = step*3 + 1 {
						k := min(step, len(b))
						if _, err := conn.Write(b[:k]); err != nil {
							return false
						}
						b = b[k:]
					}
					return !c.close
				})
				rec := NewRecorder()
				if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 60}, engineREST(t, engine, srv.url, 5*time.Second), counter(3), rec); err != nil {
					t.Fatal(err)
				}
				s := rec.Snapshot(true).Steady
				ok := s.Requests - sumErrors(s.Errors)
				success := c.code >= 200 && c.code <= 299
				if success && (ok != 60 || len(s.Errors) != 0) || !success && s.Errors[ErrorKey{HTTPStatus, c.code}] != 60 {
					t.Fatalf("%d requests, errors %v (%v)", s.Requests, s.Errors, rec.Snapshot(true).FirstErrors)
				}
				if got := rec.Snapshot(true).FirstErrors[ErrorKey{HTTPStatus, c.code}]; !success && got != c.sample {
					t.Fatalf("error sample %q, want %q", got, c.sample)
				}
				if srv.requests.Load() != 60 {
					t.Fatalf("server answered %d requests, want 60", srv.requests.Load())
				}
				// Kept alive: at most one connection per worker (one worker
				// may do all 60 before a busy machine starts the other).
				wantConns := int64(2)
				if c.close {
					wantConns = 60
				}
				if got := srv.conns.Load(); got > wantConns || (c.close && got != wantConns) || got < 1 {
					t.Fatalf("%d connections, want %d", got, wantConns)
				}
			})
		}
	}
}

func sumErrors(m map[ErrorKey]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Each way a request can fail is counted in the same class by both engines.
func TestEnginesClassifyFailuresAlike(t *testing.T) {
	cases := []struct {
		name    string
		respond answer
		timeout time.Duration
		want    ErrorClass
	}{
		{"reset", func(conn net.Conn, _ int64) bool {
			conn.(*net.TCPConn).SetLinger(0)
			return false
		}, 5 * time.Second, ConnReset},
		{"closed before answering", func(net.Conn, int64) bool { return false }, 5 * time.Second, ConnClosed},
		{"closed mid-response", func(conn net.Conn, _ int64) bool {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			return false
		}, 5 * time.Second, ConnClosed},
		{"too slow", okJSON(300 * time.Millisecond), 100 * time.Millisecond, Timeout},
		{"too large", func(conn net.Conn, _ int64) bool {
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 2<<20)
			return false
		}, 5 * time.Second, TooLarge},
		{"too large, chunked", func(conn net.Conn, _ int64) bool {
			chunk := strings.Repeat("y", 64<<10)
			for i := 0; i < 20; i++ {
				if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil && i == 0 {
					return false
				}
			}
			return false
		}, 5 * time.Second, TooLarge},
		{"not HTTP", func(conn net.Conn, _ int64) bool {
			io.WriteString(conn, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
			return false
		}, 5 * time.Second, BadResponse},
	}
	for _, engine := range engines(t) {
		for _, c := range cases {
			t.Run(string(engine)+"/"+c.name, func(t *testing.T) {
				respond := c.respond
				if c.name == "too large, chunked" {
					inner := respond
					respond = func(conn net.Conn, n int64) bool {
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
						return inner(conn, n)
					}
				}
				srv := startRaw(t, respond)
				rec := NewRecorder()
				start := time.Now()
				if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 10}, engineREST(t, engine, srv.url, c.timeout), counter(1), rec); err != nil {
					t.Fatal(err)
				}
				snap := rec.Snapshot(true)
				if got := snap.Steady.Errors[ErrorKey{Class: c.want}]; got != 10 {
					t.Fatalf("errors %v, want 10 %v (first: %v)", snap.Steady.Errors, ErrorKey{Class: c.want}, snap.FirstErrors)
				}
				// 10 timeouts of 100 ms on 2 connections: about half a second.
				if c.want == Timeout && time.Since(start) > 1500*time.Millisecond {
					t.Fatalf("10 timeouts of 100 ms on 2 connections took %v", time.Since(start))
				}
			})
		}
	}
	t.Run("refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		for _, engine := range engines(t) {
			rec := NewRecorder()
			if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 10}, engineREST(t, engine, "http://"+addr+"/v1/models/m:predict", time.Second), counter(1), rec); err != nil {
				t.Fatal(err)
			}
			snap := rec.Snapshot(true)
			if snap.Steady.Errors[ErrorKey{Class: ConnRefused}] != 10 || !strings.Contains(snap.FirstErrors[ErrorKey{Class: ConnRefused}], addr) {
				t.Fatalf("%s: errors %v, first %v", engine, snap.Steady.Errors, snap.FirstErrors)
			}
		}
	})
}

// TestEpollEngineDoesNotAllocatePerRequest compares the allocations of a
// run with those of a run twice as long: the difference is what requests
// cost, and must be nothing.
// TestEpollEngineDoesNotAllocatePerRequest counts the allocations of the
// steady phase, after a warm-up that opened the connections (each costs a
// few, on both sides) and filled the server's pools.
func TestEpollEngineDoesNotAllocatePerRequest(t *testing.T) {
	if !eventLoopsAvailable {
		t.Skip("no epoll engine here")
	}
	url := startEcho(t)
	for _, loop := range []struct {
		name string
		plan Plan
	}{
		{"closed loop", Plan{Concurrency: 4}},
		// At most 4 connections, which the warm-up opens: a connection costs
		// some 40 allocations on the two sides, and one opened in the steady
		// phase after a hiccup of the machine would be counted as requests'.
		{"open loop", Plan{Rate: 20000, MaxInflight: 4}},
	} {
		r, err := NewREST(RESTConfig{URL: url, Engine: EngineEpoll, Bodies: [][]byte{[]byte(`{"instances": [1]}`)}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var before, after runtime.MemStats
		plan := loop.plan
		plan.WarmupRequests, plan.Requests = 5000, 10000
		plan.SteadyStarted = func() { runtime.ReadMemStats(&before) }
		rec := NewRecorder()
		if _, err := Run(context.Background(), plan, r, counter(1), rec); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if s := rec.Snapshot(false).Steady; s.Requests != plan.Requests || len(s.Errors) != 0 {
			t.Fatalf("%s: %d requests, errors %v", loop.name, s.Requests, s.Errors)
		}
		n := after.Mallocs - before.Mallocs
		t.Logf("%s: %d allocations in 10000 steady requests (both sides of the loopback)", loop.name, n)
		if perRequest := float64(n) / 10000; perRequest > 0.02 {
			t.Errorf("%s: %.3f allocations per request (client and the in-process server together)", loop.name, perRequest)
		}
	}
}

// A name with several addresses, one of them not listening: both engines
// reach the server the way Go's dialer does.
func TestEnginesReachLocalhostWhicheverFamilyListens(t *testing.T) {
	ips, err := net.LookupIP("localhost")
	if err != nil {
		t.Skip(err)
	}
	t.Logf("localhost is %v here", ips) // with one address, this only tests name resolution
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(0)) // 127.0.0.1 only
			url := strings.Replace(srv.url, "127.0.0.1", "localhost", 1)
			rec := NewRecorder()
			if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 20}, engineREST(t, engine, url, 5*time.Second), counter(1), rec); err != nil {
				t.Fatal(err)
			}
			if s := rec.Snapshot(true).Steady; s.Requests != 20 || len(s.Errors) != 0 {
				t.Fatalf("%d requests, errors %v", s.Requests, s.Errors)
			}
		})
	}
}

func TestEnginesSpeakIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ln, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port))
			if err != nil {
				t.Skip(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Write([]byte(`{"predictions": [1]}`))
			})}
			go srv.Serve(ln)
			defer srv.Close()
			rec := NewRecorder()
			url := fmt.Sprintf("http://[::1]:%d/v1/models/m:predict", port)
			if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 20}, engineREST(t, engine, url, 5*time.Second), counter(1), rec); err != nil {
				t.Fatal(err)
			}
			if s := rec.Snapshot(true).Steady; s.Requests != 20 || len(s.Errors) != 0 {
				t.Fatalf("%d requests, errors %v (%v)", s.Requests, s.Errors, rec.Snapshot(true).FirstErrors)
			}
		})
	}
}

// Bodies far larger than a socket buffer go out in several writes.
func TestEnginesSendLargeBodiesWhole(t *testing.T) {
	big := []byte(`{"instances": [` + strings.Repeat("1.5, ", 600_000) + `1.5]}`) // 3 MB
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(0))
			r, err := NewREST(RESTConfig{URL: srv.url, Engine: engine, Timeout: 10 * time.Second, Bodies: [][]byte{big}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rec := NewRecorder()
			if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 10}, r, counter(1), rec); err != nil {
				t.Fatal(err)
			}
			if s := rec.Snapshot(true).Steady; s.Requests != 10 || len(s.Errors) != 0 {
				t.Fatalf("%d requests, errors %v (%v)", s.Requests, s.Errors, rec.Snapshot(true).FirstErrors)
			}
			if got := srv.received(); got[string(big)] != 10 || len(got) != 1 {
				t.Fatalf("the server got %d whole bodies and %d different ones", got[string(big)], len(got))
			}
		})
	}
}

func TestEnginesSendNothingWhenInterruptedBeforeTheStart(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(0))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			timing, err := Run(ctx, Plan{Concurrency: 4, Duration: time.Second}, engineREST(t, engine, srv.url, time.Second), counter(1), NewRecorder())
			if err != nil {
				t.Fatal(err)
			}
			if !timing.Interrupted || timing.Dispatched != 0 || srv.requests.Load() != 0 {
				t.Fatalf("interrupted %v, dispatched %d, served %d", timing.Interrupted, timing.Dispatched, srv.requests.Load())
			}
		})
	}
}
