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
	Result    *Result  `json:"result"`
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
	fmt.Fprintf(w, "  %-12s %12s %10s %10s %8s %-6s %s\n", level, "achieved/s", "p50 ms", "p99 ms", "errors", "SLO", "trace run / notes")
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
		if st.Bisection {
			notes = strings.TrimSpace(notes + " (bisection)")
		}
		if st.Unstable != "" {
			notes = strings.TrimSpace(fmt.Sprintf("%s unstable after %d tries: %s", notes, st.Attempts, st.Unstable))
		}
		fmt.Fprintf(w, "  %-12g %12.1f %10s %10s %8d %-6s %s\n", st.Level, r.ThroughputRPS, FormatMs(r.Latency.P50), FormatMs(r.Latency.P99), sum(r.Errors), verdict, notes)
	}
	if s.MaxPassing != nil {
		fmt.Fprintf(w, "\n  highest %s meeting the SLO (%s): %g\n", level, s.SLO, *s.MaxPassing)
	} else {
		fmt.Fprintf(w, "\n  no step met the SLO (%s)\n", s.SLO)
	}
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
