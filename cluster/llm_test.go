package cluster

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// llmRun is an open-loop run on the simulator's chat route, judged by
// slo when it is not empty.
func llmRun(t *testing.T, srv *sim.Server, rate float64, d time.Duration, slo string) bench.Config {
	t.Helper()
	run := bench.Config{URL: "http://" + srv.RESTAddr() + "/v1/chat/completions",
		DataPath: testkit.File(t, "chat.jsonl", `{"model":"test_model","messages":[{"role":"user","content":"hi there"}],"stream":true,"stream_options":{"include_usage":true}}`+"\n"+
			`{"model":"test_model","messages":[{"role":"user","content":"a b c d"}],"stream":true}`+"\n"),
		Plan:    load.Plan{Rate: rate, Duration: d, MaxInflight: 100, Grace: 2 * time.Second},
		Timeout: 5 * time.Second, Settings: map[string]any{"rate": rate}}
	if slo != "" {
		s, err := report.ParseSLO(slo)
		if err != nil {
			t.Fatal(err)
		}
		run.SLO, run.SLOSpec = &s, slo
	}
	return run
}

// TestCoordinatedLLMRunMergesTheStreamFiguresAndGoodputExactly runs two
// workers against the simulator's streamed chat route with faults and a
// profile window: the merged stream figures are the workers' histograms
// added (report.Merge of their own results), every stream the simulator
// served is counted once, the stream errors add up, the window's split
// covers every steady request, and the goodput is the workers' good
// requests added.
func TestCoordinatedLLMRunMergesTheStreamFiguresAndGoodputExactly(t *testing.T) {
	// The faults come from the simulator's seeded generator, one draw per
	// answer in order of arrival: the first two answers, the workers'
	// preflight calls before the common start, draw none (a preflight
	// closed mid-stream would fail its worker).
	srv := testkit.Sim(t, sim.Config{LLM: sim.LLM{TTFT: 5 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4, KeepStreams: 100000,
		Faults: sim.StreamFaults{CloseRate: 0.2, MalformedRate: 0.2, After: 2}}})
	const slo = "ttft_p99<5s,e2e_p99<10s"
	run := llmRun(t, srv, 60, 2*time.Second, slo)
	run.Profile = &bench.ProfileConfig{Addr: srv.GRPCAddr(), Delay: 500 * time.Millisecond, Options: profile.Options{Duration: 500 * time.Millisecond, LogDir: t.TempDir()}}
	ln := listen(t)
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 300 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	runs := wait()
	if err != nil {
		t.Fatal(err)
	}
	var own []*report.Result
	for i, w := range runs {
		if w.err != nil || w.res == nil {
			t.Fatalf("worker %d: %v (result %v)", i+1, w.err, w.res != nil)
		}
		if w.res.Goodput == nil || w.res.Goodput.SLO != slo {
			t.Fatalf("worker %d judged no goodput: %+v", i+1, w.res.Goodput)
		}
		own = append(own, w.res)
	}
	if res.TTFT == nil || res.LLMHistograms == nil || res.OutputTokens == nil || res.OutputTokensPerS == nil {
		t.Fatalf("the merged result has no stream figures: ttft %v histograms %v", res.TTFT, res.LLMHistograms)
	}

	// Every stream the simulator served is a steady request of one
	// worker, or one worker's preflight call.
	if served := int64(len(srv.LLMStreams())); served != res.Requests+int64(len(own)) {
		t.Errorf("the simulator served %d streams; the merged result counts %d steady requests and %d preflights", served, res.Requests, len(own))
	}
	// The merged figures are the workers' histograms added.
	want, _, err := report.Merge(own, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if *res.TTFT != *want.TTFT || *res.ITL != *want.ITL || *res.TPOT != *want.TPOT || *res.E2E != *want.E2E || *res.LLMHistograms != *want.LLMHistograms {
		t.Errorf("merged stream figures differ from the workers' merged: ttft %+v vs %+v", *res.TTFT, *want.TTFT)
	}
	var sumOut, sumTimed, sumGood, sumITL int64
	for _, r := range own {
		sumOut += *r.OutputTokens
		sumTimed += r.LLMHistograms.TimedOutputTokens
		sumGood += r.Goodput.Requests
		sumITL += r.ITL.Count
	}
	if *res.OutputTokens != sumOut || res.LLMHistograms.TimedOutputTokens != sumTimed || res.ITL.Count != sumITL {
		t.Errorf("tokens: merged %d (timed %d, gaps %d), the workers %d (%d, %d)", *res.OutputTokens, res.LLMHistograms.TimedOutputTokens, res.ITL.Count, sumOut, sumTimed, sumITL)
	}
	span := res.Phases.Steady.End - res.Phases.Steady.Start
	if got := *res.OutputTokensPerS; got <= 0 || got > float64(sumTimed)/span*1.0001 {
		t.Errorf("output tokens/s %v, at most %v over the merged span %vs", got, float64(sumTimed)/span, span)
	}

	// Stream errors add up, per class.
	for _, class := range []string{"closed_mid_stream", "malformed"} {
		var sum int64
		for _, r := range own {
			sum += r.Errors[class]
		}
		if res.Errors[class] != sum {
			t.Errorf("%s: merged %d, the workers %d", class, res.Errors[class], sum)
		}
	}
	if res.Errors["closed_mid_stream"] == 0 {
		t.Errorf("no stream closed mid-stream: errors %v", res.Errors)
	}

	// The window's split covers every steady stream, as the latency's.
	if res.LLMWindow == nil || res.LLMOutside == nil || res.Window == nil {
		t.Fatalf("no window split: llm_window %v llm_outside %v window %v", res.LLMWindow, res.LLMOutside, res.Window)
	}
	if res.LLMWindow.Requests == 0 || res.LLMWindow.Requests+res.LLMOutside.Requests != res.Requests || res.LLMWindow.Requests != res.Window.Requests ||
		res.LLMWindow.TTFT.Count+res.LLMOutside.TTFT.Count != res.TTFT.Count {
		t.Errorf("window split: in %d (ttft %d), outside %d (ttft %d), all %d (ttft %d), latency window %d",
			res.LLMWindow.Requests, res.LLMWindow.TTFT.Count, res.LLMOutside.Requests, res.LLMOutside.TTFT.Count, res.Requests, res.TTFT.Count, res.Window.Requests)
	}

	// Goodput: a stream closed mid-stream is the only one that breaks
	// these bounds; the good ones are the workers' added.
	g := res.Goodput
	if g == nil {
		t.Fatal("the merged result has no goodput")
	}
	if g.Requests != sumGood || g.Requests != res.Requests-res.Errors["closed_mid_stream"] || g.SLO != slo {
		t.Errorf("goodput %+v: want the workers' %d, the requests %d less %d closed", g, sumGood, res.Requests, res.Errors["closed_mid_stream"])
	}
	if math.Abs(g.Share-float64(g.Requests)/float64(res.Requests)) > 1e-12 || g.Rate <= 0 || g.Rate > float64(g.Requests)/span*1.0001 {
		t.Errorf("goodput share %v rate %v, want %d/%d and at most %v", g.Share, g.Rate, g.Requests, res.Requests, float64(g.Requests)/span)
	}
}

// TestCoordinatedLLMSweepJudgesEachStepByTheMergedFigures runs a sweep's
// steps on the workers with an LLM objective: each step's merged result
// has the goodput and stream figures the workers measured.
func TestCoordinatedLLMSweepJudgesEachStepByTheMergedFigures(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{LLM: sim.LLM{TTFT: 5 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4}})
	const slo = "ttft_p99<5s,itl_p99<5s"
	ln := listen(t)
	cfg := Config{Run: llmRun(t, srv, 20, time.Second, slo), Workers: 2, Listener: ln, Token: testToken, StartDelay: 300 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := bench.SweepConfig{Base: cfg.Run, Steps: bench.Steps{Values: []float64{20, 40}}, SLO: *cfg.Run.SLO,
		Run: func(ctx context.Context, run bench.Config) (*report.Result, error) { return s.Run(ctx, run) }}
	sw, err := bench.RunSweep(context.Background(), sc)
	s.Close()
	wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Steps) != 2 {
		t.Fatalf("%d steps", len(sw.Steps))
	}
	for _, step := range sw.Steps {
		r := step.Result
		if r.TTFT == nil || r.Goodput == nil || r.Goodput.Requests != r.Requests || len(r.Workers) != 2 || len(step.Broken) != 0 {
			t.Errorf("step %v: ttft %v goodput %+v of %d requests, workers %d, broken %v", step.Level, r.TTFT, r.Goodput, r.Requests, len(r.Workers), step.Broken)
		}
	}
}

// TestCoordinatedRunOpensTheWindowThroughVLLMsHTTPControl runs two
// workers with the window through the simulator's /start_profile and
// /stop_profile (--profile-http): the coordinator starts and stops it
// (the server writes its trace), says where, and the workers' streams
// inside it are the window's.
func TestCoordinatedRunOpensTheWindowThroughVLLMsHTTPControl(t *testing.T) {
	traces := make(chan string, 4)
	srv := testkit.Sim(t, sim.Config{LLM: sim.LLM{TTFT: 5 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4,
		ProfileDir: t.TempDir(), OnTrace: func(path string) { traces <- path }}})
	run := llmRun(t, srv, 40, 2*time.Second, "")
	run.Profile = &bench.ProfileConfig{HTTP: "http://" + srv.RESTAddr(), Delay: 500 * time.Millisecond, Options: profile.Options{Duration: 500 * time.Millisecond}}
	ln := listen(t)
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 300 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if p == nil || p.Error != "" || p.HTTP == nil || p.HTTP.Trace == "" || p.HTTP.Backend != profile.BackendVLLMHTTP {
		t.Fatalf("profile %+v", p)
	}
	if !p.HTTP.Started.Before(p.HTTP.StopSent) || math.Abs(p.WindowEndS-p.WindowStartS-0.5) > 1e-6 {
		t.Errorf("window %v..%v s, started %v, stop sent %v", p.WindowStartS, p.WindowEndS, p.HTTP.Started, p.HTTP.StopSent)
	}
	select {
	case path := <-traces:
		if _, err := os.Stat(path); err != nil || !strings.Contains(p.HTTP.Trace, p.HTTP.Prefix) {
			t.Errorf("trace %s: %v; result says %q", path, err, p.HTTP.Trace)
		}
	default:
		t.Error("the server wrote no trace: /stop_profile never came")
	}
	if res.LLMWindow == nil || res.LLMWindow.Requests == 0 || res.LLMWindow.Requests+res.LLMOutside.Requests != res.Requests {
		t.Errorf("window split: %+v / %+v of %d", res.LLMWindow, res.LLMOutside, res.Requests)
	}
}

// TestAWorkerOfTheFirstProtocolIsRefusedAtJoin checks the wire's
// version: a version 1 worker would drop the LLM objective and send its
// intervals with a warm-up flag instead of their tag, so the coordinator
// refuses it with both versions named.
func TestAWorkerOfTheFirstProtocolIsRefusedAtJoin(t *testing.T) {
	run := bench.Config{URL: "http://127.0.0.1:1/v1/chat/completions",
		DataPath: testkit.File(t, "chat.json", `{"model":"test_model","messages":[{"role":"user","content":"hi"}],"stream":true}`),
		Plan:     load.Plan{Rate: 10, Duration: time.Second}}
	c, err := newCoordinator(Config{Run: run, Workers: 1, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if c.spec.SLO != "" || ProtocolVersion != 3 {
		t.Fatalf("spec slo %q, protocol %d", c.spec.SLO, ProtocolVersion)
	}
	// The objective travels when it has LLM terms, and only then (a
	// sweep's latency terms judge the merged steps on the coordinator).
	for spec, want := range map[string]string{"p99<50ms,ttft_p99<500ms": "p99<50ms,ttft_p99<500ms", "p99<50ms,errors<1%": ""} {
		slo, err := report.ParseSLO(spec)
		if err != nil {
			t.Fatal(err)
		}
		r := run
		r.SLO, r.SLOSpec = &slo, spec
		got, _, err := specOf(r)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := got.benchConfig(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.SLO != want || (want != "") != (cfg.SLO != nil && cfg.SLOSpec == want && cfg.SLO.HasLLM()) {
			t.Errorf("--slo %s: the workers get %q (their run's %v), want %q", spec, got.SLO, cfg.SLO, want)
		}
	}
	srv := httptest.NewServer(c.handler())
	defer srv.Close()
	cl := &client{base: srv.URL, token: testToken, http: srv.Client()}
	err = cl.call(context.Background(), pathJoin, joinRequest{Protocol: 1, Name: "old"}, &joinReply{}, time.Minute)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusConflict || !strings.Contains(se.Msg, "protocol 1; this coordinator speaks 3") {
		t.Errorf("a version 1 join: %v", err)
	}
}

// TestASlowPreflightDoesNotDelayTheWorkersLoad gives the workers a
// target whose first answer takes 1.5 s (an LLM's whole stream is the
// preflight call): they make it during the start delay, and their load
// begins at the common start, so the window, a second into the steady
// phase, opens a second after the merged result's start (it opened half
// a second before it when the preflight came after the start).
func TestASlowPreflightDoesNotDelayTheWorkersLoad(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{LLM: sim.LLM{TTFT: 1500 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2,
		ProfileDir: t.TempDir()}})
	run := llmRun(t, srv, 4, 2*time.Second, "")
	run.Profile = &bench.ProfileConfig{HTTP: "http://" + srv.RESTAddr(), Delay: time.Second, Options: profile.Options{Duration: 500 * time.Millisecond}}
	ln := listen(t)
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 3 * time.Second}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Profile; p == nil || p.WindowStartS < 0.5 || p.WindowStartS > 1.0001 {
		t.Errorf("the window opened at %+v, want about 1 s after the merged start", p)
	}
	for _, w := range res.Workers {
		if w.Status != report.WorkerOK {
			t.Errorf("worker %d: %s (%s)", w.Index, w.Status, w.Error)
		}
	}
}

// TestLongStreamsMakeNoWorkerLate runs two workers against streams of
// about 1.8 s (the preflight call is one) with a start delay of 200 ms
// and the default start tolerance: the common start is set once both
// have made their preflight call, so both begin on time, the run has
// no error, and the summary counts both in the result. (When the start
// was given at join, each worker began about 1.6 s late and the run
// failed with "0 of 2 workers in the result".)
func TestLongStreamsMakeNoWorkerLate(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{LLM: sim.LLM{TTFT: 200 * time.Millisecond, TokenDelay: 200 * time.Millisecond, OutputTokens: 8}})
	run := llmRun(t, srv, 4, time.Second, "")
	ln := listen(t)
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 200 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Workers {
		if w.Status != report.WorkerOK {
			t.Errorf("worker %d: %s (%s)", w.Index, w.Status, w.Error)
		}
	}
	var out strings.Builder
	report.WriteSummary(&out, res)
	if !strings.Contains(out.String(), "coordinated: 2 of 2 workers in the result") {
		t.Errorf("the summary does not count both workers:\n%s", out.String())
	}
}
