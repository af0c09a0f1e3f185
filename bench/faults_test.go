package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// Fault tests: each is named after the fault and checks that the numbers
// survive it: errors counted by class, the load goes on, nothing hangs.

func TestServerKilledAndRestartedMidRun(t *testing.T) {
	cfg := sim.Config{REST: "127.0.0.1:0", Latency: sim.Latency{Fixed: time.Millisecond}}
	srv, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, addr := srv.PredictURL(), srv.RESTAddr()
	restarted := make(chan *sim.Server, 1)
	go func() {
		time.Sleep(time.Second)
		srv.Close()
		time.Sleep(500 * time.Millisecond)
		cfg.REST = addr
		again, err := sim.Start(cfg)
		if err != nil {
			t.Error(err)
		}
		restarted <- again
	}()
	start := time.Now()
	res, err := Run(context.Background(), Config{URL: url, DataPath: writeFile(t, "data.json", body), Timeout: time.Second,
		Plan: load.Plan{Rate: 200, Duration: 3 * time.Second, MaxInflight: 100}})
	if again := <-restarted; again != nil {
		defer again.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("errors %v", res.Errors)
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("the run took %v", took)
	}
	// Calls in flight at the kill end as closed or reset connections, or
	// as the 503 the closing sim gives the calls it was holding.
	failed := res.Errors["connection_refused"] + res.Errors["connection_closed"] + res.Errors["connection_reset"] + res.Errors["http_503"]
	if res.Requests != 600 || failed < 50 || res.LatencyOK.Count < 400 || res.LatencyOK.Count+failed != res.Requests {
		t.Fatalf("%d requests, %d answered, errors %v", res.Requests, res.LatencyOK.Count, res.Errors)
	}
	// Refused connections never reached a server: no latency. Requests cut
	// off by the kill did, and count at the time they failed.
	if measured := res.Requests - res.Errors["connection_refused"]; res.Latency.Count != measured {
		t.Fatalf("latency counts %d requests, want the %d that reached the server", res.Latency.Count, measured)
	}
	if last := res.Series[len(res.Series)-1]; last.Requests == last.Errors {
		t.Fatalf("no success after the restart: %+v", res.Series)
	}
}

// faultRun runs 400 requests against a faulty sim. Faults spare the first
// call (the preflight), which would otherwise stop the run by chance.
func faultRun(t *testing.T, cfg sim.Config, timeout time.Duration, maxResponse int) *report.Result {
	t.Helper()
	srv := startSim(t, cfg)
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Timeout: timeout, MaxResponseBytes: maxResponse, Plan: load.Plan{Concurrency: 16, Requests: 400}})
	var te *TargetError
	if err != nil && !errors.As(err, &te) {
		t.Fatal(err)
	}
	if res == nil || res.Requests != 400 {
		t.Fatalf("result %+v, err %v", res, err)
	}
	return res
}

// The sim resets (or half-closes) 20% of the connections it answers on,
// without answering. On a kept-alive connection the client cannot tell that
// from a server closing an idle connection as the request arrived, so the
// request goes once more on a new connection (as browsers do); only a
// failure on a new connection, or of that second try, counts. So the
// server sees more calls than the 400 requests, and fewer than 20% fail.
func resendingFaultRun(t *testing.T, faults sim.Faults, class string) {
	t.Helper()
	srv := startSim(t, sim.Config{Faults: faults})
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Timeout: 5 * time.Second, Plan: load.Plan{Concurrency: 16, Requests: 400}})
	if err != nil {
		t.Fatal(err)
	}
	n := res.Errors[class]
	if n < 1 || n > 80 || len(res.Errors) != 1 || res.Requests != 400 || res.LatencyOK.Count+n != 400 || res.Latency.Count != 400 {
		t.Fatalf("errors %v, %d answered, latency of %d", res.Errors, res.LatencyOK.Count, res.Latency.Count)
	}
	// Every request reached the server once, and the ones that lost a
	// kept-alive connection twice: 400 + resends, less the preflight's.
	if calls := srv.Predicts() - 1; calls <= 400 || calls > 400+400/5*2 {
		t.Fatalf("the server saw %d calls for 400 requests", calls)
	}
}

func TestConnectionResetsAreCountedAsResets(t *testing.T) {
	resendingFaultRun(t, sim.Faults{ResetRate: 0.2, AfterCalls: 1}, "connection_reset")
}

func TestHalfClosedConnectionsAreCountedAsClosed(t *testing.T) {
	resendingFaultRun(t, sim.Faults{HalfCloseRate: 0.2, AfterCalls: 1}, "connection_closed")
}

func TestSlowResponsesPastTheTimeoutAreTimeouts(t *testing.T) {
	// Service time uniform in [50, 150) ms with a 100 ms timeout: about half
	// time out. They are in the latency at the timeout (at least 100 ms),
	// so a server that times out cannot look faster than one that answers
	// late; the successful ones all took less.
	res := faultRun(t, sim.Config{Latency: sim.Latency{Fixed: 50 * time.Millisecond, Jitter: 100 * time.Millisecond}}, 100*time.Millisecond, 0)
	n := res.Errors["timeout"]
	if n < 120 || n > 280 || res.Latency.Count != 400 || res.LatencyOK.Count != 400-n {
		t.Fatalf("errors %v, latency of %d, ok %d", res.Errors, res.Latency.Count, res.LatencyOK.Count)
	}
	if res.Latency.P90 < 99.9 || res.LatencyOK.P90 >= res.Latency.P90 {
		t.Fatalf("p90 %.1f ms, of the successful ones %.1f: timeouts must count at the timeout", res.Latency.P90, res.LatencyOK.P90)
	}
}

func TestServerErrorStormIsCountedNotFatal(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 1, ErrorStatus: 503}})
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Timeout: 5 * time.Second, Plan: load.Plan{Concurrency: 16, Requests: 400}})
	if res == nil || res.Errors["http_503"] != 400 || res.SuccessRPS != 0 {
		t.Fatalf("result %+v", res)
	}
	// Counted, and the run says it failed: no request succeeded.
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "no request succeeded (http_503: 400") {
		t.Fatalf("error %v", err)
	}
}

func TestResponsesLargerThanMaxResponseAreRefused(t *testing.T) {
	// Every response is 4 MiB against a 64 KiB limit: the first one (the
	// preflight) stops the run with the reason, before any load; the body is
	// not read (fasthttp checks Content-Length against the limit).
	srv := startSim(t, sim.Config{Faults: sim.Faults{ResponseBytes: 4 << 20}})
	_, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		MaxResponseBytes: 64 << 10, Plan: load.Plan{Concurrency: 4, Requests: 400}})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "larger than bench.Config.MaxResponseBytes allows") {
		t.Fatalf("got %v", err)
	}
	// Within the limit, the same responses are fine.
	res := faultRun(t, sim.Config{Faults: sim.Faults{ResponseBytes: 4 << 20}}, 5*time.Second, 8<<20)
	if len(res.Errors) != 0 {
		t.Fatalf("errors %v", res.Errors)
	}
}

func TestProfilerAnsweringGarbageKeepsTheLoadResults(t *testing.T) {
	srv := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Garbage: true}})
	prof := profiled(srv, t.TempDir())
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: prof})
	if err != nil || res.Requests != 100 || len(res.Errors) != 0 {
		t.Fatalf("err %v, %d requests, errors %v", err, res.Requests, res.Errors)
	}
	if !strings.Contains(res.Profile.Error, "not a ProfileResponse (truncated or garbage)") {
		t.Fatalf("profile error %q", res.Profile.Error)
	}
	// Nothing was captured: no timeline, no TensorBoard hint (review).
	var out strings.Builder
	report.WriteSummary(&out, res)
	if res.Profile.Timeline != nil || strings.Contains(out.String(), "client plane placed") || strings.Contains(out.String(), "open with: tensorboard") {
		t.Fatalf("timeline %+v; summary:\n%s", res.Profile.Timeline, out.String())
	}
}

func TestOversizedToolDataIsRefused(t *testing.T) {
	srv := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Mode: sim.ProfileReturnToolData}})
	logdir := t.TempDir()
	prof := profiled(srv, logdir)
	prof.Options.MaxBytes = 64
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: prof})
	if err != nil || res.Requests < 100 { // the window holds the steady phase open past 1 s
		t.Fatalf("err %v, %d requests", err, res.Requests)
	}
	if !strings.Contains(res.Profile.Error, "the trace is larger than profile.Options.MaxBytes 64 (the server sent ") || len(res.Profile.Files) != 0 {
		t.Fatalf("profile %+v error %q", res.Profile.Result, res.Profile.Error)
	}
}

// TestAProfilerAddressThatIsNoProfilerGivesNoTimeline: --profile pointed
// at the REST port. The capture fails at once; the summary must not place
// a client plane on a timeline nobody traced, nor point at TensorBoard
// (review: "placed by the Profile call's timing" and "open with:
// tensorboard" for a run directory holding only the client plane).
func TestAProfilerAddressThatIsNoProfilerGivesNoTimeline(t *testing.T) {
	// 50 ms calls: requests are in flight when the short-lived window
	// opens, so the client plane has something to place.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 50 * time.Millisecond}})
	prof := profiled(srv, t.TempDir())
	prof.Addr = srv.RESTAddr()
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: prof})
	if err != nil || res.Requests != 100 || res.Profile == nil || res.Profile.Error == "" {
		t.Fatalf("err %v, %d requests, profile %+v", err, res.Requests, res.Profile)
	}
	var out strings.Builder
	report.WriteSummary(&out, res)
	if res.Profile.Timeline != nil || strings.Contains(out.String(), "client plane placed") || strings.Contains(out.String(), "open with: tensorboard") {
		t.Fatalf("timeline %+v; summary:\n%s", res.Profile.Timeline, out.String())
	}
}
