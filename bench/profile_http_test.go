package bench

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

const chatBody = `{"model":"test_model","messages":[{"role":"user","content":"hi there"}],"stream":true}`

// httpWindowConfig is a streamed chat load on srv with a window through
// its HTTP profiler control.
func httpWindowConfig(t *testing.T, srv *sim.Server, plan load.Plan, window time.Duration) Config {
	return Config{URL: "http://" + srv.RESTAddr() + "/v1/chat/completions", DataPath: writeFile(t, "chat.json", chatBody),
		Timeout: 5 * time.Second, Plan: plan,
		Profile: &ProfileConfig{HTTP: "http://" + srv.RESTAddr(), Delay: 300 * time.Millisecond,
			Options: profile.Options{Duration: window, Slack: time.Minute}}}
}

// traceRequests reads the number of requests a simulated trace holds.
func traceRequests(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []struct {
			Name string         `json:"name"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.NewDecoder(zr).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.TraceEvents {
		if e.Name == "profile window" {
			return int(e.Args["requests"].(float64))
		}
	}
	t.Fatalf("%s has no profile window event", path)
	return 0
}

// The HTTP window opens in the steady load, the server writes its trace at
// the stop, and the requests inside and outside are counted apart.
func TestHTTPWindowOnLLMSim(t *testing.T) {
	dir := t.TempDir()
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 5 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4, ProfileDir: dir}})
	cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: 2500 * time.Millisecond, MaxInflight: 50, Grace: 5 * time.Second}, time.Second)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if p == nil || p.HTTP == nil || p.Error != "" {
		t.Fatalf("profile report %+v", p)
	}
	h := p.HTTP
	if h.Backend != profile.BackendVLLMHTTP || !strings.HasPrefix(h.Prefix, "loadprof-") || h.Started.IsZero() ||
		h.StopSent.Before(h.Started) || h.Stopped.Before(h.StopSent) || h.StopMs < 0 || !strings.Contains(h.Trace, h.Prefix+"_*.pt.trace.json.gz") {
		t.Fatalf("http window %+v", h)
	}
	traces := srv.LLMTraces()
	if len(traces) != 1 || filepath.Dir(traces[0]) != mustAbs(t, dir) {
		t.Fatalf("server traces %v, want one in %s", traces, dir)
	}
	if res.Window == nil || res.Outside == nil || res.Window.Requests == 0 || res.Outside.Requests == 0 {
		t.Fatalf("window %+v outside %+v", res.Window, res.Outside)
	}
	if res.Window.Requests+res.Outside.Requests != res.Requests {
		t.Errorf("window %d + outside %d != steady %d", res.Window.Requests, res.Outside.Requests, res.Requests)
	}
	// The server saw the window's requests (those that finished inside it:
	// the last ones sent in it may end after the stop).
	inTrace := traceRequests(t, traces[0])
	if inTrace == 0 || int64(inTrace) > res.Window.Requests+5 {
		t.Errorf("the server's trace holds %d requests, the window %d", inTrace, res.Window.Requests)
	}
	if !(p.WindowEndS > p.WindowStartS && p.WindowStartS > 0) {
		t.Errorf("window %.3f..%.3f", p.WindowStartS, p.WindowEndS)
	}
	var sb strings.Builder
	report.WriteProfileSummary(&sb, p)
	if !strings.Contains(sb.String(), "the server wrote its trace under its torch_profiler_dir, files "+h.Prefix+"_*.pt.trace.json.gz") {
		t.Errorf("summary:\n%s", sb.String())
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A server without its profiler (404) gets the message saying how to start
// it: a warning by default, the run's error with Required.
func TestHTTPWindowWithoutProfiler(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2}})
	plan := load.Plan{Rate: 50, Duration: time.Second, MaxInflight: 50, Grace: 5 * time.Second}
	cfg := httpWindowConfig(t, srv, plan, 300*time.Millisecond)
	cfg.Profile.Delay = 0
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Profile; p == nil || !strings.Contains(p.Error, "404") || !strings.Contains(p.Error, "--profiler-config") {
		t.Fatalf("profile report %+v", p)
	}
	cfg.Profile.Required = true
	_, err = Run(context.Background(), cfg)
	var target *TargetError
	if !errors.As(err, &target) || !errors.Is(err, profile.ErrNoProfiler) {
		t.Fatalf("required: %v, want a TargetError for the missing profiler", err)
	}
}

// Ctrl-C inside the window still stops the server's profiler: its trace is
// written and the report says the window ended early.
func TestHTTPWindowCtrlCStopsTheServer(t *testing.T) {
	dir := t.TempDir()
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: dir, KeepStreams: 1000}})
	cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: time.Hour, MaxInflight: 50, Grace: time.Second}, time.Hour)
	cfg.Profile.Delay = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ran struct {
		res *report.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := Run(ctx, cfg)
		done <- ran{res, err}
	}()
	for len(srv.LLMStreams()) < 20 { // the window opened at once; 20 requests later it is open
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if p := r.res.Profile; p == nil || p.HTTP == nil || !p.HTTP.Interrupted || p.HTTP.Trace == "" || p.Error != "" {
			t.Fatalf("profile report %+v", p)
		}
	case <-time.After(time.Minute): // far below the hour
		t.Fatal("the interrupted run did not end")
	}
	if traces := srv.LLMTraces(); len(traces) != 1 {
		t.Fatalf("server traces %v: the profiler was not stopped", traces)
	}
}

// A /start_profile that hangs does not hold the steady phase: past its
// bound the load goes on and ends on schedule without a window, the report
// says the window was not opened, and the stop is still sent once the
// start has taken effect, so the server is not left profiling.
func TestHTTPWindowStalledStartDoesNotHoldTheLoad(t *testing.T) {
	dir := t.TempDir()
	const stall = 6 * time.Second
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: dir,
		ProfileStartDelay: stall, KeepStreams: 100000}})
	window := time.Second // its start bound: 2s
	cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: time.Second, MaxInflight: 50, Grace: 5 * time.Second}, window)
	cfg.Profile.Delay = 0
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if p == nil || p.HTTP == nil || !p.HTTP.Late || !p.HTTP.Started.IsZero() || p.HTTP.Trace != "" {
		t.Fatalf("profile report %+v", p)
	}
	for _, want := range []string{"no answer within 2s", "no window was opened", "/stop_profile was sent", p.HTTP.Prefix + "_*"} {
		if !strings.Contains(p.Error, want) {
			t.Errorf("error %q does not say %q", p.Error, want)
		}
	}
	if res.Window != nil && res.Window.Requests != 0 {
		t.Errorf("%d requests counted in a window that never opened", res.Window.Requests)
	}
	starts, stops := srv.ProfileCalls()
	if len(starts) != 1 || len(stops) != 1 || !stops[0].After(starts[0]) {
		t.Fatalf("the server took starts %v and stops %v: want the stop after the start", starts, stops)
	}
	if traces := srv.LLMTraces(); len(traces) != 1 {
		t.Errorf("server traces %v: the session the late start opened was not closed", traces)
	}
	// Every request of the run reached the server before the stalled start
	// took effect: the steady phase did not wait for it.
	var last time.Time
	for _, r := range srv.LLMStreams() {
		if at := srv.Started().Add(r.Arrived); at.After(last) {
			last = at
		}
	}
	if !last.Before(starts[0]) {
		t.Errorf("the last request arrived %v after the start took effect: the steady phase waited for /start_profile", last.Sub(starts[0]))
	}
}

// Another client's session (409) is left alone: no stop; a start that
// failed with a 5xx may have started the profiler, so it is stopped.
func TestHTTPWindowStopOnlyWhatItMayHaveStarted(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: t.TempDir()}})
	base := "http://" + srv.RESTAddr()
	resp, err := http.Post(base+"/start_profile", "application/json", strings.NewReader(`{"profile_prefix": "someone-else"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: 500 * time.Millisecond, MaxInflight: 50, Grace: 5 * time.Second}, 200*time.Millisecond)
	cfg.Profile.Delay = 0
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Profile; p == nil || !strings.Contains(p.Error, "409") || !strings.Contains(p.Error, "did not stop it") {
		t.Fatalf("profile report %+v", p)
	}
	if _, stops := srv.ProfileCalls(); len(stops) != 0 {
		t.Errorf("loadprof stopped another client's session (%d stops)", len(stops))
	}

	var stopsSeen atomic.Int32
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start_profile":
			http.Error(w, `{"error":{"message":"engine failed","code":500}}`, http.StatusInternalServerError)
		case "/stop_profile":
			stopsSeen.Add(1)
		}
	}))
	defer ctl.Close()
	cfg.Profile.HTTP = ctl.URL
	res, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Profile; p == nil || !strings.Contains(p.Error, "status 500") || !strings.Contains(p.Error, "/stop_profile was sent") || stopsSeen.Load() != 1 {
		t.Fatalf("profile report %+v, %d stops", p, stopsSeen.Load())
	}
}
