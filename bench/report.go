package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/loadprof/loadprof/load"
)

// WriteSummary prints the human summary of a run.
func WriteSummary(w io.Writer, r *Result) {
	loop := "closed loop"
	if r.Loop == "open" {
		loop = "open loop"
	}
	if rate, ok := r.Config["rate"]; ok && r.Loop == "open" {
		loop = fmt.Sprintf("open loop at %v req/s", rate)
	} else if c, ok := r.Config["concurrency"]; ok && r.Loop == "closed" {
		loop = fmt.Sprintf("closed loop, concurrency %v", c)
	}
	from := "send time"
	if r.LatencyFrom == "intended_send" {
		from = "intended send time"
	}
	if len(r.MergedFrom) > 0 {
		writeMergedInputs(w, r, from)
	} else {
		fmt.Fprintf(w, "loadprof run: %s %s (%s; latency from %s)\n", strings.ToUpper(r.Transport), r.Target, loop, from)
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
			ms(s.Min), ms(s.Mean), ms(s.P50), ms(s.P90), ms(s.P95), ms(s.P99), ms(s.P999), ms(s.Max))
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
	if len(r.Errors) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "  errors:")
		for _, k := range sortedKeys(r.Errors) {
			pct := 100 * float64(r.Errors[k]) / float64(max(r.Requests, 1))
			fmt.Fprintf(w, "    %-20s %9d  %5.1f%%", k, r.Errors[k], pct)
			if msg := r.ErrorSamples[k]; msg != "" && msg != k {
				fmt.Fprintf(w, "  e.g. %s", oneLine(msg, 100))
			}
			fmt.Fprintln(w)
		}
	}
	if r.Profile != nil {
		writeProfileSummary(w, r.Profile)
	}
	writeClientNotes(w, r)
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
		fmt.Fprintf(w, "\n  send lag (how late requests left against their schedule): p50 %s ms, p99 %s ms, max %s ms\n", ms(l.P50), ms(l.P99), ms(l.Max))
	}
	limit := "--max-inflight"
	if v, ok := r.Config["max-inflight"]; ok {
		limit = fmt.Sprintf("--max-inflight %v", v)
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

func ms(v float64) string {
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

// IsTerminal reports whether f is a terminal, where live progress belongs.
func IsTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// The periods of the progress lines: a terminal shows one line rewritten
// every second; a log (CI, a file, a pipe) gets a new line every 10 s, few
// enough to read, often enough to see that a long run is alive.
const (
	terminalProgressEvery = time.Second
	logProgressEvery      = 10 * time.Second
)

// startProgress reports the run's progress to w until the returned function
// is called, then prints the final counts once more. On a terminal the line
// is rewritten in place every second; anywhere else (w not a terminal) a
// whole line is added every 10 s. every, when positive, replaces the
// period. The recorder's seconds are closed every second (or every period,
// if shorter) also without w, so a stalled server shows in the series.
func startProgress(w io.Writer, rec *load.Recorder, plan load.Plan, every time.Duration) func() {
	live := false
	if f, ok := w.(*os.File); ok {
		live = IsTerminal(f)
	}
	if every <= 0 {
		every = logProgressEvery
		if live {
			every = terminalProgressEvery
		}
	}
	tick := min(every, time.Second)
	ticksPerLine := max(1, int(every/tick))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		var rate progressRate
		show := func() {
			elapsed := rec.Now()
			p := rec.Progress()
			line := progressLine(p, elapsed, plan) + rate.next(p, elapsed)
			if live {
				fmt.Fprint(w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
		for ticks := 1; ; ticks++ {
			select {
			case <-stop:
				if w != nil {
					show()
					if live {
						fmt.Fprintln(w)
					}
				}
				return
			case <-t.C:
				rec.Tick()
				if w != nil && ticks%ticksPerLine == 0 {
					show()
				}
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

// progressRate is the throughput between two progress lines, counted in the
// phase the run is in, so the warm-up's requests never raise the steady
// phase's rate (nor do warm-up requests that finish after it started).
type progressRate struct {
	at     time.Duration
	warmup int64
	steady int64
}

func (r *progressRate) next(p load.Progress, now time.Duration) string {
	dw, ds, dt := p.WarmupRequests-r.warmup, p.SteadyRequests-r.steady, now-r.at
	if p.Phase == load.Steady && p.SteadyFrom > r.at {
		// The steady phase began within this interval: its rate is over
		// its own part of it (review: 149.9 req/s at 200 when the interval
		// held a second of warm-up).
		dt = now - p.SteadyFrom
	}
	r.at, r.warmup, r.steady = now, p.WarmupRequests, p.SteadyRequests
	if dt <= 0 {
		return ""
	}
	n := dw
	if p.Phase == load.Steady {
		n = ds
	}
	return fmt.Sprintf("  %.1f req/s over the last %s", float64(n)/dt.Seconds(), dt.Round(100*time.Millisecond))
}

// progressLine is one progress line without its rate: elapsed time of the
// planned total, the phase with its own counts, and whether the profile
// window is open.
func progressLine(p load.Progress, elapsed time.Duration, plan load.Plan) string {
	clock := fmt.Sprintf("%4.0fs", elapsed.Seconds())
	if plan.Duration > 0 && (plan.WarmupRequests == 0 || plan.WarmupDuration > 0) {
		// The planned length is known when both phases are timed.
		clock += fmt.Sprintf("/%.0fs", (max(plan.WarmupDuration, 0) + plan.Duration).Seconds())
	}
	line := fmt.Sprintf("[%s] ", clock)
	if p.Phase == load.Warmup {
		line += fmt.Sprintf("warm-up %9d requests", p.WarmupRequests)
	} else {
		line += fmt.Sprintf("steady  %9d requests %6d errors  p99 %s ms", p.SteadyRequests, p.SteadyErrors, ms(float64(p.SteadyP99Us)/usPerMs))
	}
	if p.Window {
		line += "  [profile window open]"
	}
	return line
}
