package report

import (
	"fmt"
	"io"
)

// writeLLMSummary prints an OpenAI-compatible target's stream figures:
// TTFT, ITL, TPOT and end-to-end latency in the latency table's columns,
// and the tokens. Nothing for other targets.
func writeLLMSummary(w io.Writer, r *Result) {
	if r.TTFT == nil {
		return
	}
	// A gap of 0 is real (two chunks read together), not a missing value.
	ms := func(count int64, v float64) string {
		if v == 0 && count > 0 {
			return "0"
		}
		return FormatMs(v)
	}
	row := func(name string, s Stats) {
		fmt.Fprintf(w, "  %-8s %9d %8s %8s %8s %8s %8s %8s %8s %8s\n", name, s.Count,
			ms(s.Count, s.Min), ms(s.Count, s.Mean), ms(s.Count, s.P50), ms(s.Count, s.P90), ms(s.Count, s.P95), ms(s.Count, s.P99), ms(s.Count, s.P999), ms(s.Count, s.Max))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-8s %9s %8s %8s %8s %8s %8s %8s %8s %8s\n", "stream", "count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")
	for _, s := range []struct {
		name  string
		stats *Stats
	}{{"ttft", r.TTFT}, {"itl", r.ITL}, {"tpot", r.TPOT}, {"e2e", r.E2E}} {
		if s.stats != nil {
			row(s.name, *s.stats)
		}
	}
	fmt.Fprintln(w, "  (milliseconds; the streams that reached data: [DONE] with output: time to first token, every")
	fmt.Fprintln(w, "   gap between output chunks, time per output token after the first, end to end)")
	var out, in int64
	var perS float64
	if r.OutputTokens != nil {
		out = *r.OutputTokens
	}
	if r.InputTokens != nil {
		in = *r.InputTokens
	}
	if r.OutputTokensPerS != nil {
		perS = *r.OutputTokensPerS
	}
	fmt.Fprintf(w, "  tokens   %d output, %d input, %.1f output tokens/s\n", out, in, perS)
	if g := r.Goodput; g != nil {
		fmt.Fprintf(w, "  goodput  %d requests (%.1f%%), %.2f/s met %s one by one\n", g.Requests, 100*g.Share, g.Rate, g.SLO)
	}
}
