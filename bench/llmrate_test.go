package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// output_tokens_per_s_per_request is each stream's output over its own
// end-to-end latency: with every stream of the same length (the
// simulator's 4 tokens) the slowest rate is those 4 tokens over the
// slowest end to end, and the fastest over the fastest; it is in
// result.json, the summary's tokens line, and a merge keeps it exactly.
func TestPerRequestOutputTokensPerS(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 3 * time.Millisecond, TokenDelay: 2 * time.Millisecond, TokenJitter: 2 * time.Millisecond, OutputTokens: 4}})
	cfg := Config{URL: "http://" + srv.RESTAddr() + "/v1/chat/completions", DataPath: writeFile(t, "chat.json", chatBody),
		Timeout: 5 * time.Second, Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50, Grace: 5 * time.Second}}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := res.OutputTokensPerSPerRequest
	if q == nil || res.E2E == nil || q.Count != res.E2E.Count || q.Count == 0 {
		t.Fatalf("per-request rates %+v, e2e %+v", q, res.E2E)
	}
	const tokens = 4
	near := func(got, want float64) bool { return got > want*0.99 && got < want*1.01 } // the histograms' precision
	if want := tokens / (res.E2E.Max / 1e3); !near(q.Min, want) {
		t.Errorf("slowest rate %.2f tokens/s, want %d tokens over the slowest e2e %.3f ms: %.2f", q.Min, tokens, res.E2E.Max, want)
	}
	if want := tokens / (res.E2E.Min / 1e3); !near(q.Max, want) {
		t.Errorf("fastest rate %.2f tokens/s, want %d tokens over the fastest e2e %.3f ms: %.2f", q.Max, tokens, res.E2E.Min, want)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"output_tokens_per_s_per_request":{"count":`) {
		t.Errorf("result.json has no output_tokens_per_s_per_request")
	}
	var out strings.Builder
	report.WriteSummary(&out, res)
	if !strings.Contains(out.String(), "per request (output / e2e): min ") {
		t.Errorf("the summary's tokens line has no per-request rates:\n%s", out.String())
	}
	var page strings.Builder
	if err := report.WriteHTML(&page, []*report.Result{res}, []string{"run"}, report.ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "per request (output / e2e): min ") {
		t.Errorf("the page's tokens line has no per-request rates")
	}
	merged, _, err := report.Merge([]*report.Result{res, res}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if m := merged.OutputTokensPerSPerRequest; m == nil || m.Count != 2*q.Count || m.Min != q.Min || m.Max != q.Max {
		t.Errorf("merged per-request rates %+v, want twice %+v", m, q)
	}
}
