package report

import (
	"fmt"
	"io"
	"strings"
)

// WriteSummary prints the human summary of a run.
func WriteSummary(w io.Writer, r *Result) {
	loop := "closed loop"
	if r.Loop == "open" {
		loop = "open loop"
	}
	if r.Rate > 0 && r.Loop == "open" {
		loop = fmt.Sprintf("open loop at %v req/s", r.Rate)
	} else if r.Concurrency > 0 && r.Loop == "closed" {
		loop = fmt.Sprintf("closed loop, concurrency %v", r.Concurrency)
	}
	from := "send time"
	if r.LatencyFrom == "intended_send" {
		from = "intended send time"
	}
	if len(r.MergedFrom) > 0 {
		writeMergedInputs(w, r, from)
	} else {
		fmt.Fprintln(w, runHeading(r, loop, from))
	}
	if len(r.Workers) > 0 {
		writeWorkers(w, r.Workers)
	}
	if r.Interrupted {
		fmt.Fprintf(w, "  INTERRUPTED: partial results")
		if r.Unfinished > 0 {
			fmt.Fprintf(w, " (%d requests still in flight were not counted)", r.Unfinished)
		}
		fmt.Fprintln(w)
	}
	wu, st := r.Phases.Warmup, r.Phases.Steady
	if wu.Requests > 0 {
		fmt.Fprintf(w, "  warm-up  %7.1fs %9d requests %6d errors  (not in the statistics)\n", wu.End-wu.Start, wu.Requests, sum(wu.Errors))
	}
	fmt.Fprintf(w, "  steady   %7.1fs %9d requests %6d errors  %.1f req/s (%.1f ok/s)\n", st.End-st.Start, r.Requests, sum(r.Errors), r.ThroughputRPS, r.SuccessRPS)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-8s %9s %8s %8s %8s %8s %8s %8s %8s %8s\n", "latency", "count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")
	row := func(name string, s Stats) {
		fmt.Fprintf(w, "  %-8s %9d %8s %8s %8s %8s %8s %8s %8s %8s\n", name, s.Count,
			FormatMs(s.Min), FormatMs(s.Mean), FormatMs(s.P50), FormatMs(s.P90), FormatMs(s.P95), FormatMs(s.P99), FormatMs(s.P999), FormatMs(s.Max))
	}
	row("all", r.Latency)
	failed := r.Latency.Count != r.LatencyOK.Count
	if failed {
		row("ok only", r.LatencyOK)
	}
	if r.Window != nil {
		row("window", r.Window.Latency)
		if r.Outside != nil {
			row("outside", r.Outside.Latency)
		}
	}
	fmt.Fprintln(w, "  (milliseconds; every request that reached the server, answered with any status or failed,")
	fmt.Fprintln(w, "   a failure at the time it failed and a timeout at --timeout; \"ok only\": successful requests)")
	writeLLMSummary(w, r)
	if len(r.Errors) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "  errors:")
		for _, k := range SortedKeys(r.Errors) {
			pct := 100 * float64(r.Errors[k]) / float64(max(r.Requests, 1))
			fmt.Fprintf(w, "    %-20s %9d  %5.1f%%", k, r.Errors[k], pct)
			if msg := r.ErrorSamples[k]; msg != "" && msg != k {
				fmt.Fprintf(w, "  e.g. %s", oneLine(msg, 100))
			}
			fmt.Fprintln(w)
		}
	}
	if r.Profile != nil {
		WriteProfileSummary(w, r.Profile)
	}
	writeServerSummary(w, r)
	writeClientNotes(w, r)
}

// WriteSummaries prints the summary of each result, each headed by the
// file it was read from when there are several.
func WriteSummaries(w io.Writer, results []*Result, names []string) {
	for i, r := range results {
		if len(results) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "== %s ==\n", names[i])
		}
		WriteSummary(w, r)
	}
}

// writeClientNotes says when the open loop could not keep its schedule, and
// why: the server holding --max-inflight requests (too slow for the rate)
// is a finding about the server; lag with slots free is the client's own.
func writeClientNotes(w io.Writer, r *Result) {
	c := r.Client
	if r.Loop != "open" {
		return
	}
	if l := c.SendLag; l != nil {
		fmt.Fprintf(w, "\n  send lag (how late requests left against their schedule): p50 %s ms, p99 %s ms, max %s ms\n", FormatMs(l.P50), FormatMs(l.P99), FormatMs(l.Max))
	}
	limit := "--max-inflight"
	if r.MaxInflight > 0 {
		limit = fmt.Sprintf("--max-inflight %v", r.MaxInflight)
	}
	if c.Saturated > 0 || c.NotSent > 0 {
		fmt.Fprintf(w, "\n  note: the server kept %s requests outstanding (it answers more slowly than the rate needs): %d requests were sent late, waiting for one to finish, and their wait is in the latency", limit, c.Saturated)
		if c.NotSent > 0 {
			fmt.Fprintf(w, "; %d more were still waiting when the steady phase ended and were not sent", c.NotSent)
		}
		fmt.Fprintln(w)
	}
	if c.MaxFreeSendLagMs > 10 {
		fmt.Fprintf(w, "\n  note: with slots free, the client still fell up to %.1f ms behind its schedule (a busy client machine); latency counts from the schedule\n", c.MaxFreeSendLagMs)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// FormatMs writes a latency in milliseconds with the digits that matter
// at its size ("-" for none), as the summaries print it.
func FormatMs(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.3f", v)
	case v < 1000:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
