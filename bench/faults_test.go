package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
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
	failed := res.Errors["connection_refused"] + res.Errors["connection_closed"] + res.Errors["connection_reset"]
	if res.Requests != 600 || failed < 50 || res.Latency.Count < 400 || res.Latency.Count+failed != res.Requests {
		t.Fatalf("%d requests, %d answered, errors %v", res.Requests, res.Latency.Count, res.Errors)
	}
	if last := res.Series[len(res.Series)-1]; last.Requests == last.Errors {
		t.Fatalf("no success after the restart: %+v", res.Series)
	}
}

// faultRun runs 400 requests against a faulty sim. Faults spare the first
// call (the preflight), which would otherwise stop the run by chance.
func faultRun(t *testing.T, cfg sim.Config, timeout time.Duration, maxResponse int) *Result {
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

func TestConnectionResetsAreCountedAsResets(t *testing.T) {
	res := faultRun(t, sim.Config{Faults: sim.Faults{ResetRate: 0.2, AfterCalls: 1}}, 5*time.Second, 0)
	if n := res.Errors["connection_reset"]; n < 40 || n > 130 || res.Latency.Count+n != 400 {
		t.Fatalf("errors %v, %d answered", res.Errors, res.Latency.Count)
	}
}

func TestHalfClosedConnectionsAreCountedAsClosed(t *testing.T) {
	res := faultRun(t, sim.Config{Faults: sim.Faults{HalfCloseRate: 0.2, AfterCalls: 1}}, 5*time.Second, 0)
	if n := res.Errors["connection_closed"]; n < 40 || n > 130 || res.Latency.Count+n != 400 {
		t.Fatalf("errors %v, %d answered", res.Errors, res.Latency.Count)
	}
}

func TestSlowResponsesPastTheTimeoutAreTimeouts(t *testing.T) {
	// Service time uniform in [50, 150) ms with a 100 ms timeout: about half
	// time out, and no request waits much past its deadline.
	res := faultRun(t, sim.Config{Latency: sim.Latency{Fixed: 50 * time.Millisecond, Jitter: 100 * time.Millisecond}}, 100*time.Millisecond, 0)
	if n := res.Errors["timeout"]; n < 120 || n > 280 || res.Latency.Max > 110 {
		t.Fatalf("errors %v, max latency %.1f ms", res.Errors, res.Latency.Max)
	}
}

func TestServerErrorStormIsCountedNotFatal(t *testing.T) {
	res := faultRun(t, sim.Config{Latency: sim.Latency{ErrorRate: 1, ErrorStatus: 503}}, 5*time.Second, 0)
	if res.Errors["http_503"] != 400 || res.SuccessRPS != 0 {
		t.Fatalf("errors %v", res.Errors)
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
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "larger than --max-response allows") {
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
	if !strings.Contains(res.Profile.Error, "the trace is larger than --profile-max-bytes 64 (the server sent ") || len(res.Profile.Files) != 0 {
		t.Fatalf("profile %+v error %q", res.Profile.Result, res.Profile.Error)
	}
}
