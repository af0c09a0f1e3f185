package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/profile"
)

func TestParseSLOLLMTerms(t *testing.T) {
	slo, err := ParseSLO("ttft_p99<500ms,itl_p99<50ms,tpot_mean<20ms,e2e_p99<5s,ttft_p99.9<1s,p99<6s,errors<1%")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"ttft_p99": 500, "itl_p99": 50, "tpot_mean": 20, "e2e_p99": 5000, "ttft_p999": 1000}
	if len(slo.LLM) != len(want) || slo.Latency["p99"] != 6000 || slo.ErrPct != 1 {
		t.Fatalf("parsed %+v", slo)
	}
	for k, v := range want {
		if slo.LLM[k] != v {
			t.Errorf("%s: %v, want %v", k, slo.LLM[k], v)
		}
	}
	for _, bad := range []string{"ttft_p98<1s", "itl<50ms", "tokens_p99<1s", "ttft_p99<50", "tpot_mean<-1ms"} {
		if _, err := ParseSLO(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	b := mustSLO(t, "ttft_p50<100ms,ttft_p99<500ms,itl_p99<50ms,itl_mean<20ms,tpot_p90<30ms,e2e_max<5s").RequestBounds()
	if b != (RequestBounds{TTFTMs: 100, ITLMaxMs: 50, ITLMeanMs: 20, TPOTMs: 30, E2EMs: 5000}) {
		t.Errorf("bounds %+v", b)
	}
}

func mustSLO(t *testing.T, spec string) SLO {
	t.Helper()
	s, err := ParseSLO(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSLOBrokenLLMTerms(t *testing.T) {
	r := &Result{Requests: 10, Phases: Phases{Steady: Phase{Requests: 10}},
		TTFT: &Stats{Count: 10, P99: 400}, ITL: &Stats{Count: 50, P99: 60, Mean: 10}, TPOT: &Stats{Count: 10, Mean: 15}, E2E: &Stats{Count: 10, P99: 900}}
	if got := mustSLO(t, "ttft_p99<500ms,itl_mean<20ms,tpot_mean<20ms,e2e_p99<1s").Broken(r); len(got) != 0 {
		t.Errorf("broken %q", got)
	}
	got := mustSLO(t, "ttft_p99<500ms,itl_p99<50ms,e2e_p99<900ms").Broken(r)
	if len(got) != 2 || !strings.HasPrefix(got[0], "itl_p99 60.0ms >= 50ms") || !strings.HasPrefix(got[1], "e2e_p99 900.0ms") {
		t.Errorf("broken %q", got)
	}
	r.ITL = &Stats{}
	if got := mustSLO(t, "itl_p99<50ms").Broken(r); len(got) != 1 || !strings.Contains(got[0], "no request measured it") {
		t.Errorf("no gaps: broken %q", got)
	}
	plain := &Result{Requests: 10, Phases: Phases{Steady: Phase{Requests: 10}}}
	if got := mustSLO(t, "ttft_p99<500ms").Broken(plain); len(got) != 1 || !strings.Contains(got[0], "not an OpenAI-compatible") {
		t.Errorf("a result without stream figures: broken %q", got)
	}
}

func TestSweepSummaryShowsLLMColumns(t *testing.T) {
	perS := 123.4
	step := func(level float64, pass bool, g *Goodput) StepResult {
		return StepResult{Level: level, Pass: pass, Result: &Result{ThroughputRPS: level, TTFT: &Stats{Count: 5, P99: 12.5}, ITL: &Stats{Count: 20, P99: 7.25},
			E2E: &Stats{Count: 5}, OutputTokensPerS: &perS, Goodput: g}}
	}
	two := 2.0
	s := &SweepResult{Loop: "closed", SLO: "itl_p99<8ms", MaxPassing: &two, Stopped: "step 2 (4) broke the SLO",
		Steps: []StepResult{step(2, true, &Goodput{Requests: 10, Rate: 9.5, Share: 1}), step(4, false, &Goodput{Requests: 3, Rate: 2, Share: 0.25})}}
	var b bytes.Buffer
	WriteSweepSummary(&b, s)
	out := b.String()
	for _, want := range []string{"ttft p99 ms", "itl p99 ms", "out tok/s", "goodput/s", "12.5", "7.25", "123.4", "9.5 (100%)", "2.0 (25%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	s.Steps[0].Result.TTFT, s.Steps[1].Result.TTFT = nil, nil
	WriteSweepSummary(&b, s)
	if strings.Contains(b.String(), "ttft p99") {
		t.Errorf("a sweep without stream figures has LLM columns:\n%s", b.String())
	}
}

// A step profiled through the HTTP control names the server's trace
// files in its notes (the column stayed empty).
func TestSweepSummaryNamesAnHTTPWindowsTrace(t *testing.T) {
	res := &Result{ThroughputRPS: 2, Profile: &ProfileReport{HTTP: &profile.HTTPWindow{Prefix: "loadprof-20260101T000000Z", Trace: "under its torch_profiler_dir"}}}
	s := &SweepResult{Loop: "open", SLO: "p99<1s", Steps: []StepResult{{Level: 2, Pass: true, Result: res}}}
	var b bytes.Buffer
	WriteSweepSummary(&b, s)
	if !strings.Contains(b.String(), "server: loadprof-20260101T000000Z_*") {
		t.Errorf("the step's notes do not name the server's trace:\n%s", b.String())
	}
}
