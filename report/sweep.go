package report

import (
	"fmt"
	"io"
	"strings"
)

// StepResult is one level of a sweep.
type StepResult struct {
	Level     float64  `json:"level"` // requests/s (open loop) or requests in flight (closed loop)
	Pass      bool     `json:"pass"`
	Broken    []string `json:"broken,omitempty"`
	Attempts  int      `json:"attempts"`
	Unstable  string   `json:"unstable,omitempty"` // why the halves of the step disagreed on its last try
	TraceRun  string   `json:"trace_run,omitempty"`
	Bisection bool     `json:"bisection,omitempty"`
	// Stopped is why the step ended without a verdict (a coordinated
	// run's worker was lost) and the sweep with it.
	Stopped string  `json:"stopped,omitempty"`
	Result  *Result `json:"result"`
}

// SweepResult is what a sweep writes to result.json.
type SweepResult struct {
	Version    int            `json:"version"`
	Tool       string         `json:"tool"`
	Kind       string         `json:"kind"` // "sweep"
	Loop       string         `json:"loop"`
	SLO        string         `json:"slo"`
	Config     map[string]any `json:"config"`
	Steps      []StepResult   `json:"steps"`
	MaxPassing *float64       `json:"max_passing"` // highest passing level, nil when none passed
	Stopped    string         `json:"stopped"`     // why the sweep ended
}

// WriteSweepSummary prints the table of steps.
func WriteSweepSummary(w io.Writer, s *SweepResult) {
	level := "rate"
	if s.Loop == "closed" {
		level = "concurrency"
	}
	fmt.Fprintf(w, "loadprof sweep (%s loop): %s\n\n", s.Loop, s.Stopped)
	server := s.scrapedServer()
	serverHead := ""
	if server {
		serverHead = fmt.Sprintf(" %14s %10s", "server p99 ms", "outside ms")
	}
	llm := s.streamed()
	if llm {
		serverHead += fmt.Sprintf(" %12s %10s %10s %14s", "ttft p99 ms", "itl p99 ms", "out tok/s", "goodput/s")
	}
	fmt.Fprintf(w, "  %-12s %12s %10s %10s%s %8s %-6s %s\n", level, "achieved/s", "p50 ms", "p99 ms", serverHead, "errors", "SLO", "trace run / notes")
	for _, st := range s.Steps {
		r := st.Result
		if r == nil {
			continue
		}
		verdict := "pass"
		if !st.Pass {
			verdict = "FAIL"
		}
		notes := st.TraceRun
		if p := r.Profile; notes == "" && p != nil && p.HTTP != nil && p.HTTP.Trace != "" {
			// The trace is on the server's disk, under the window's prefix.
			notes = "server: " + p.HTTP.Prefix + "_*"
		}
		if st.Stopped != "" {
			verdict = "-"
			notes = strings.TrimSpace(notes + " stopped: " + st.Stopped)
		}
		if st.Bisection {
			notes = strings.TrimSpace(notes + " (bisection)")
		}
		if st.Unstable != "" {
			notes = strings.TrimSpace(fmt.Sprintf("%s unstable after %d tries: %s", notes, st.Attempts, st.Unstable))
		}
		serverCells := ""
		if server {
			p99, outside := StepServerCells(r)
			serverCells = fmt.Sprintf(" %14s %10s", p99, outside)
		}
		if llm {
			serverCells += stepLLMCells(r)
		}
		fmt.Fprintf(w, "  %-12g %12.1f %10s %10s%s %8d %-6s %s\n", st.Level, r.ThroughputRPS, FormatMs(r.Latency.P50), FormatMs(r.Latency.P99), serverCells, sum(r.Errors), verdict, notes)
	}
	if server {
		fmt.Fprintln(w, "\n  server p99: the server's own, from its histogram's buckets over the step's steady phase (an estimate; '>' in the last bucket);")
		fmt.Fprintln(w, "  outside: the client's mean minus the server's (network, tunnel, proxy, client); '-' where a step has no such figure")
	}
	switch {
	case s.SLO == "" && s.MaxPassing != nil:
		// Without --slo a step passes when it ran without failing.
		fmt.Fprintf(w, "\n  highest passing %s (no --slo given): %g\n", level, *s.MaxPassing)
	case s.SLO == "":
		fmt.Fprintf(w, "\n  no step passed (no --slo given)\n")
	case s.MaxPassing != nil:
		fmt.Fprintf(w, "\n  highest %s meeting the SLO (%s): %g\n", level, s.SLO, *s.MaxPassing)
	default:
		fmt.Fprintf(w, "\n  no step met the SLO (%s)\n", s.SLO)
	}
}

// streamed reports whether a step of the sweep has LLM stream figures
// (an OpenAI-compatible target).
func (s *SweepResult) streamed() bool {
	for _, st := range s.Steps {
		if st.Result != nil && st.Result.TTFT != nil {
			return true
		}
	}
	return false
}

// stepLLMCells are a step's TTFT and ITL p99, output tokens/s and
// goodput (rate and share, "-" without LLM terms in the objective).
func stepLLMCells(r *Result) string {
	ms := func(st *Stats) string {
		if st == nil || st.Count == 0 {
			return "-"
		}
		return FormatMs(st.P99)
	}
	tokens, goodput := "-", "-"
	if r.OutputTokensPerS != nil {
		tokens = fmt.Sprintf("%.1f", *r.OutputTokensPerS)
	}
	if g := r.Goodput; g != nil {
		goodput = fmt.Sprintf("%.1f (%.0f%%)", g.Rate, 100*g.Share)
	}
	return fmt.Sprintf(" %12s %10s %10s %14s", ms(r.TTFT), ms(r.ITL), tokens, goodput)
}

// scrapedServer reports whether a step of the sweep scraped the server's
// metrics (--metrics).
func (s *SweepResult) scrapedServer() bool {
	for _, st := range s.Steps {
		if st.Result != nil && st.Result.Server != nil {
			return true
		}
	}
	return false
}

// StepServerCells are a step's server p99 and outside-the-server figures
// in milliseconds as the sweep's tables say them: "-" where the step has
// none, "withheld" where an edge scrape lagged too far (LagWithheld),
// "> X" for a p99 in the last, +Inf, bucket, and "none" for a negative
// outside figure, which is no time (NegativeOutside).
func StepServerCells(r *Result) (p99, outside string) {
	p99, outside = "-", "-"
	s := r.Server
	if s == nil {
		return p99, outside
	}
	if Withheld(r) != "" {
		return "withheld", "withheld"
	}
	if l := s.LatencyMs; l != nil && l.Count > 0 && l.P99 != nil {
		p99 = FormatMs(l.P99.Ms)
		if l.P99.BucketHighMs == nil {
			p99 = "> " + FormatMs(l.P99.BucketLowMs)
		}
	}
	if OutsideNone(r) {
		outside = "none"
	} else if s.OutsideMs != nil {
		outside = FormatMs(*s.OutsideMs)
	}
	return p99, outside
}

// NoSuccess reports whether no step of the sweep had a successful steady
// request: the target never answered, which loadprof's exit code 3 says
// of a single run too, rather than an SLO that was broken.
func (s *SweepResult) NoSuccess() bool {
	ran := false
	for _, st := range s.Steps {
		if st.Result == nil {
			continue
		}
		ran = true
		if Successes(st.Result) > 0 {
			return false
		}
	}
	return ran
}

// WriteJSON writes the sweep to path as every output is written
// (outfile.Write).
func (s *SweepResult) WriteJSON(path string) error { return WriteJSONOutput("", path, s) }
