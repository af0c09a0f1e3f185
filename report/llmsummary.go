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
	ms := llmMs
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
	fmt.Fprintf(w, "  tokens   %s\n", llmTokensLine(r))
	if r.Goodput != nil {
		fmt.Fprintf(w, "  goodput  %s\n", goodputLine(r.Goodput))
	}
	for _, warning := range llmWarnings(r) {
		fmt.Fprintf(w, "  warning: %s\n", warning)
	}
}

// llmWarnings are the summary's warnings about what the server's streams
// said: answers that completed without output, usage that contradicts the
// stream.
func llmWarnings(r *Result) []string {
	var out []string
	if r.StreamsWithoutOutput != nil && *r.StreamsWithoutOutput > 0 {
		out = append(out, fmt.Sprintf("%d streams reached data: [DONE] without one output chunk (no content, reasoning or tool call): counted ok, not timed", *r.StreamsWithoutOutput))
	}
	if r.UsageBelowChunks != nil && *r.UsageBelowChunks > 0 {
		out = append(out, fmt.Sprintf("%d answers' usage gave fewer completion tokens than the output chunks they streamed: their chunks were counted instead", *r.UsageBelowChunks))
	}
	return out
}

// goodputLine is the goodput line of the summary and the page.
func goodputLine(g *Goodput) string {
	return fmt.Sprintf("%d requests (%.1f%%), %.2f/s met %s one by one", g.Requests, 100*g.Share, g.Rate, g.SLO)
}

// llmTokensLine is the tokens line of the summary and the page.
func llmTokensLine(r *Result) string {
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
	input := fmt.Sprintf("%d input", in)
	if in == 0 {
		// A prompt has a token at least: 0 is a server that sent no
		// usage, which alone gives input counts.
		input = "input unknown (the server sent no usage)"
	}
	line := fmt.Sprintf("%d output, %s, %.1f output tokens/s", out, input, perS)
	if q := r.OutputTokensPerSPerRequest; q != nil && q.Count > 0 {
		line += fmt.Sprintf("; per request (output / e2e): min %.1f, p50 %.1f, mean %.1f, max %.1f", q.Min, q.P50, q.Mean, q.Max)
	}
	return line
}

// llmMs is a stream figure as the summary prints it: a gap of 0 is real
// (two chunks read together), not a missing value.
func llmMs(count int64, v float64) string {
	if v == 0 && count > 0 {
		return "0"
	}
	return FormatMs(v)
}

// streamErrorClasses are the error classes a stream's failure is counted
// under (load.LLMFailure), which the page lists beside the stream figures.
var streamErrorClasses = []string{"stalled", "closed_mid_stream", "malformed", "stream_error", "not_streamed"}

// llmView is the page's stream section: the summary's table, the tokens
// line and the stream failures.
type llmView struct {
	Rows         []llmRow
	Tokens       string
	Goodput      string   // "" without --slo LLM terms
	Warnings     []string // the summary's stream warnings (llmWarnings)
	StreamErrors []kv
}

type llmRow struct {
	Name  string
	Cells []kv // stat name, as the summary prints it
}

func llmViewOf(r *Result) *llmView {
	if r.TTFT == nil {
		return nil
	}
	v := &llmView{Tokens: llmTokensLine(r), Warnings: llmWarnings(r)}
	if r.Goodput != nil {
		v.Goodput = goodputLine(r.Goodput)
	}
	for _, s := range []struct {
		name  string
		stats *Stats
	}{{"ttft", r.TTFT}, {"itl", r.ITL}, {"tpot", r.TPOT}, {"e2e", r.E2E}} {
		if s.stats == nil {
			continue
		}
		st := *s.stats
		row := llmRow{Name: s.name, Cells: []kv{{"count", fmt.Sprint(st.Count)}}}
		for _, c := range []struct {
			k string
			v float64
		}{{"min", st.Min}, {"mean", st.Mean}, {"p50", st.P50}, {"p90", st.P90}, {"p95", st.P95}, {"p99", st.P99}, {"p999", st.P999}, {"max", st.Max}} {
			row.Cells = append(row.Cells, kv{c.k, llmMs(st.Count, c.v)})
		}
		v.Rows = append(v.Rows, row)
	}
	for _, class := range streamErrorClasses {
		v.StreamErrors = append(v.StreamErrors, kv{class, fmt.Sprint(r.Errors[class])})
	}
	return v
}
