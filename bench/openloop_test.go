package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// openLoopPaths are the three ways loadprof sends load: both REST engines
// and gRPC, each as a Config against srv.
func openLoopPaths() []struct {
	name string
	cfg  func(t *testing.T, srv *sim.Server, plan load.Plan) Config
} {
	type path = struct {
		name string
		cfg  func(t *testing.T, srv *sim.Server, plan load.Plan) Config
	}
	var paths []path
	for _, engine := range restEngines() {
		paths = append(paths, path{"rest-" + string(engine), func(t *testing.T, srv *sim.Server, plan load.Plan) Config {
			return Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), RESTEngine: engine, Plan: plan, Timeout: 10 * time.Second}
		}})
	}
	paths = append(paths, path{"grpc", func(t *testing.T, srv *sim.Server, plan load.Plan) Config {
		cfg := grpcConfig(srv, writeFile(t, "data.json", body), plan)
		cfg.Timeout = 10 * time.Second
		return cfg
	}})
	return paths
}

// openLoopRun is one open-loop run of TestOpenLoopIsOpenOnEveryPath...
// against its own simulator, with what the simulator recorded.
type openLoopRun struct {
	srv *sim.Server
	res *report.Result
	err error
}

// serviceMs is the mean service time the simulator itself measured for
// its calls.
func (r *openLoopRun) serviceMs() float64 {
	calls, total := r.srv.PredictLatency()
	return float64(total) / float64(calls) / 1e6
}

// offSchedule is how far the server saw the last want arrivals of r off
// an ideal schedule of one every interval fitted to them (its origin the
// median offset, so that a constant delay of every send, which the latency
// check bounds, does not count): the median and the 90th percentile.
func (r *openLoopRun) offSchedule(t *testing.T, want int64, interval time.Duration) (med, p90, worst time.Duration) {
	t.Helper()
	arrivals := r.srv.Arrivals()
	if int64(len(arrivals)) < want {
		t.Fatalf("the server saw %d calls, want at least %d", len(arrivals), want)
	}
	arrivals = arrivals[int64(len(arrivals))-want:]
	slices.Sort(arrivals)
	offsets := make([]time.Duration, len(arrivals))
	for i, a := range arrivals {
		offsets[i] = a - time.Duration(i)*interval
	}
	origin := slices.Clone(offsets)
	slices.Sort(origin)
	var off []time.Duration
	for _, o := range offsets {
		d := o - origin[len(origin)/2]
		off = append(off, max(d, -d))
	}
	slices.Sort(off)
	return off[len(off)/2], off[len(off)*9/10], off[len(off)-1]
}

func TestOpenLoopIsOpenOnEveryPathWhateverTheServerLatency(t *testing.T) {
	// The server takes one second per call and is asked for 100 calls a
	// second: 100 requests are in flight at once. Request i must leave at
	// start + i/100 on every path, however many are outstanding, so every
	// latency is the server's second plus the transport's share, and the
	// server sees one arrival every 10 ms, not bursts.
	//
	// What the transport's share is on this machine right now (a busy
	// machine sends late and reads late) is measured beside it: a control
	// run on the same path at the same rate, at the same time, against a
	// server that answers in a millisecond, with one request in flight at
	// most. The slow server's run may be later than the control by a
	// margin only; requests held back until a sender frees up wait a
	// good part of the server's second.
	const rate, steady = 100, 2 * time.Second
	for _, p := range openLoopPaths() {
		t.Run(p.name, func(t *testing.T) {
			slow := &openLoopRun{srv: startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Second}, KeepArrivals: 1000})}
			control := &openLoopRun{srv: startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}, KeepArrivals: 1000})}
			var wg sync.WaitGroup
			for _, r := range []*openLoopRun{slow, control} {
				cfg := p.cfg(t, r.srv, load.Plan{Rate: rate, Duration: steady, MaxInflight: 1000})
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.res, r.err = Run(context.Background(), cfg)
				}()
			}
			wg.Wait()
			want := int64(rate * steady.Seconds())
			for _, r := range []*openLoopRun{slow, control} {
				if r.err != nil {
					t.Fatal(r.err)
				}
				if res := r.res; res.Requests != want || len(res.Errors) != 0 || res.Client.NotSent != 0 || res.Client.Saturated != 0 {
					t.Fatalf("%d requests (want %d), errors %v, not sent %d, saturated %d", res.Requests, want, res.Errors, res.Client.NotSent, res.Client.Saturated)
				}
			}
			if raceDetector {
				// The race detector slows the client and the in-process
				// server several times over: with two busy loops beside it
				// gRPC's p99 reached 1.7 s. The timing is checked without it.
				return
			}
			// The server's own second is the floor (less the histogram's
			// resolution there, 1 ms at 3 digits). Above the service time
			// the simulator measured (its timers wake late on a busy
			// machine), the slow run's p50 may exceed the control's by a
			// tenth of that second, its p99 by half of it. Before the fix
			// p50 was 1165-1174 ms and p99 1894-1913 ms on gRPC and
			// goroutines; an idle machine gives p99 1003-1005 ms.
			l, c := slow.res.Latency, control.res.Latency
			second := slow.serviceMs()
			p50, p99 := l.P50-second, l.P99-second
			c50, c99 := c.P50-control.serviceMs(), c.P99-control.serviceMs()
			t.Logf("server's mean %.1f ms; latency min %.1f, p50 %.1f (+%.1f; the control's +%.1f), p99 %.1f (+%.1f; the control's +%.1f) ms",
				second, l.Min, l.P50, p50, c50, l.P99, p99, c99)
			if l.Min < 998.9 || p50 > c50+second/10 || p99 > c99+second/2 {
				t.Fatalf("latency min %.1f ms, p50 %.1f, p99 %.1f, max %.1f: %.1f and %.1f ms over the server's %.1f ms, the control's %.1f and %.1f: want min >= 1000 and at most a tenth and half of the server's time more than the control",
					l.Min, l.P50, l.P99, l.Max, p50, p99, second, c50, c99)
			}
			// Most arrivals are within a few milliseconds of the schedule,
			// the control's as much as the slow server's; bursts (requests
			// held back until a sender frees up) are hundreds off.
			interval := time.Second / rate
			med, p90, worst := slow.offSchedule(t, want, interval)
			cmed, cp90, cworst := control.offSchedule(t, want, interval)
			t.Logf("arrivals off their 10 ms schedule by %v (median), %v (p90), %v (max); the control's %v, %v, %v", med, p90, worst, cmed, cp90, cworst)
			if med > cmed+interval || p90 > cp90+5*interval {
				t.Fatalf("arrivals off their 10 ms schedule by %v (median), %v (p90), %v (max); the control's by %v, %v, %v", med, p90, worst, cmed, cp90, cworst)
			}
		})
	}
}

func TestSaturatedOpenLoopCountsLateAndUnsentRequestsAndEndsOnTime(t *testing.T) {
	// The server answers in 200 ms and --max-inflight is 10: it can take
	// 50 requests a second, and 100 are due. The first 10 leave on time;
	// from then on every request waits for a slot (saturated), the backlog
	// grows, and when the 2 s schedule ends the rest of it is not sent.
	// Every scheduled request is either sent or counted as not sent, the
	// server saw exactly the ones sent, and the summary blames the server's
	// pace, not the client machine.
	const rate, steady, slots = 100, 2 * time.Second, 10
	for _, p := range openLoopPaths() {
		t.Run(p.name, func(t *testing.T) {
			srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 200 * time.Millisecond}})
			cfg := p.cfg(t, srv, load.Plan{Rate: rate, Duration: steady, MaxInflight: slots})
			cfg.Settings = map[string]any{"max-inflight": "10"}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Client
			if scheduled := int64(rate * steady.Seconds()); res.Requests+c.NotSent != scheduled || c.NotSent == 0 {
				t.Fatalf("%d sent + %d not sent, want %d scheduled with some not sent", res.Requests, c.NotSent, scheduled)
			}
			if c.Saturated != res.Requests-slots || len(res.Errors) != 0 {
				t.Fatalf("saturated %d of %d sent (want all but the first %d), errors %v", c.Saturated, res.Requests, slots, res.Errors)
			}
			if served := srv.Predicts() - 1; served != res.Requests { // less the preflight call
				t.Fatalf("the server answered %d load requests, the client counted %d", served, res.Requests)
			}
			if c.PeakInflight != slots {
				t.Fatalf("peak in flight %d, want %d", c.PeakInflight, slots)
			}
			var summary strings.Builder
			report.WriteSummary(&summary, res)
			if s := summary.String(); !strings.Contains(s, "--max-inflight 10 requests outstanding") || !strings.Contains(s, "were not sent") {
				t.Fatalf("summary does not put the lateness on --max-inflight:\n%s", s)
			}
			// The backlog's lag (up to a second) is the server's; what the
			// client adds with slots free (a busy machine) is kept apart.
			if c.MaxFreeSendLagMs > c.MaxSendLagMs/4 {
				t.Fatalf("send lag with slots free %.1f ms, overall %.1f ms: the backlog's lag is blamed on the client", c.MaxFreeSendLagMs, c.MaxSendLagMs)
			}
		})
	}
}

func TestSaturatedOpenLoopEndsAtItsDurationNotWhenTheBacklogDrains(t *testing.T) {
	// 2000 requests a second for half a second against a server that takes
	// a second, 10 at a time: draining that backlog would take 100 s. The
	// run stops sending when the schedule ends and waits only for the
	// requests in flight (bounded by --timeout).
	for _, p := range openLoopPaths() {
		t.Run(p.name, func(t *testing.T) {
			srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Second}})
			cfg := p.cfg(t, srv, load.Plan{Rate: 2000, Duration: 500 * time.Millisecond, MaxInflight: 10})
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests+res.Client.NotSent != 1000 || res.Requests != srv.Predicts()-1 {
				t.Fatalf("%d sent + %d not sent, want 1000; the server answered %d", res.Requests, res.Client.NotSent, srv.Predicts()-1)
			}
			// Nothing leaves after the schedule's end, also when slots come
			// free then (at 1 s): a send at 1 s of a request due by 0.5 s
			// would be over 0.5 s late.
			if res.Client.MaxSendLagMs >= 500 || res.Requests != 10 {
				t.Fatalf("%d sent, the latest %.0f ms behind its schedule: requests left after the 0.5 s schedule ended", res.Requests, res.Client.MaxSendLagMs)
			}
			// Sending ends with the schedule (0.5 s); what is in flight then
			// ends within --timeout.
			if end, limit := res.Phases.Steady.End, (500*time.Millisecond + cfg.Timeout).Seconds(); end > limit {
				t.Fatalf("the steady phase ended at %.1f s, past duration + --timeout = %.1f s", end, limit)
			}
		})
	}
}

func TestThroughputOfATinyRunIsItsRateNotOneOverItsLatency(t *testing.T) {
	// One request at --rate 1 for 1 s used to read as 1/latency (about
	// 100 req/s against a 10 ms server).
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 10 * time.Millisecond}})
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Timeout: 5 * time.Second, Plan: load.Plan{Rate: 1, Duration: time.Second, MaxInflight: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1 || res.ThroughputRPS != 1 || res.SuccessRPS != 1 {
		t.Fatalf("%d requests, %.2f req/s (%.2f ok/s), want 1 request at 1 req/s", res.Requests, res.ThroughputRPS, res.SuccessRPS)
	}
}

func TestInterruptedRunReturnsAfterGraceNotAfterTheTimeout(t *testing.T) {
	// The server answers the preflight and then holds every call. The run
	// is interrupted with requests in flight: it waits --grace (1 s) for
	// them and returns with what it has, not after --timeout (2 minutes),
	// which is how long closing a connection under a request used to wait
	// on the goroutine engine.
	const grace, timeout = time.Second, 2 * time.Minute
	for _, engine := range restEngines() {
		t.Run(string(engine), func(t *testing.T) {
			url, held := answerOnceThenHold(t)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				for held.Load() < 5 {
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}()
			start := time.Now()
			res, err := Run(ctx, Config{URL: url, DataPath: writeFile(t, "data.json", body), RESTEngine: engine, Timeout: timeout,
				Plan: load.Plan{Rate: 50, Duration: time.Minute, MaxInflight: 100, Grace: grace}})
			took := time.Since(start)
			if res == nil || !res.Interrupted {
				t.Fatalf("result %+v, err %v", res, err)
			}
			if took > timeout/4 {
				t.Fatalf("the interrupted run returned after %v; --grace is %v, --timeout %v", took, grace, timeout)
			}
		})
	}
}

// answerOnceThenHold starts a loopback HTTP server that answers its first
// request and holds every later one until the test ends; held counts those.
func answerOnceThenHold(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls, held atomic.Int64
	done := make(chan struct{})
	var conns sync.Map
	t.Cleanup(func() {
		close(done)
		ln.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(conn, true)
			go func() {
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if calls.Add(1) > 1 {
						held.Add(1)
						<-done
						return
					}
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"predictions\": [1.5]}")
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/v1/models/m:predict", &held
}
