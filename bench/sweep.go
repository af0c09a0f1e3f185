package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// Steps is a sweep's list of load levels: "50:500:50" (from:to:step) or
// "1:64:x2" (from:to:xFACTOR), given as a rate or a concurrency.
type Steps struct {
	Values []float64
}

// maxSteps bounds a sweep's steps, checked before any is made.
const maxSteps = 1000

// ParseSteps reads a step range; a plain number is not a range. name is
// the setting the range is for, as errors call it.
func ParseSteps(name, spec string) (Steps, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return Steps{}, fmt.Errorf("%s %q: want FROM:TO:STEP (50:500:50) or FROM:TO:xFACTOR (1:64:x2)", name, spec)
	}
	from, err1 := parseFinite(parts[0])
	to, err2 := parseFinite(parts[1])
	if err1 != nil || err2 != nil || from <= 0 || to < from {
		return Steps{}, fmt.Errorf("%s %q: FROM and TO must be positive numbers with FROM <= TO", name, spec)
	}
	// The count comes first: a range of a trillion steps is refused, not
	// built. TO is widened by a little so that 0.1:0.3:0.1 ends at 0.3.
	top := to * (1 + 1e-9)
	var next func(i int) float64
	var n float64
	if f, ok := strings.CutPrefix(parts[2], "x"); ok {
		factor, err := parseFinite(f)
		if err != nil || factor <= 1 {
			return Steps{}, fmt.Errorf("%s %q: the factor must be a number above 1", name, spec)
		}
		n = math.Floor(math.Log(top/from)/math.Log(factor)) + 1
		next = func(i int) float64 { return from * math.Pow(factor, float64(i)) }
	} else {
		step, err := parseFinite(parts[2])
		if err != nil || step <= 0 {
			return Steps{}, fmt.Errorf("%s %q: STEP must be a positive number", name, spec)
		}
		n = math.Floor((top-from)/step) + 1
		next = func(i int) float64 { return from + float64(i)*step }
	}
	if !(n <= maxSteps) {
		return Steps{}, fmt.Errorf("%s %q: %.4g steps; at most %d", name, spec, n, maxSteps)
	}
	var s Steps
	for i := 0; i < int(n); i++ {
		if v := next(i); v <= top {
			s.Values = append(s.Values, v)
		}
	}
	return s, nil
}

// parseFinite reads a number that is neither infinite nor NaN.
func parseFinite(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		err = fmt.Errorf("%q is not a finite number", s)
	}
	return v, err
}

// SweepConfig is a sweep: the run settings of every step, the levels, the
// objective and where to profile.
type SweepConfig struct {
	Base         Config // Plan.Rate or Plan.Concurrency is replaced per step
	Closed       bool   // steps are concurrency levels, not rates
	Steps        Steps
	SLO          report.SLO
	Binary       bool    // after a broken step, narrow the max passing level down by bisection
	Tolerance    float64 // relative width at which bisection stops (0.05)
	ProfileSteps string  // comma list of all, first, last, max and 1-based step numbers
	Repeats      int     // tries of an unstable step (halves differ) beyond the first
	Stability    float64 // relative difference between halves that makes a step unstable (0.2)
	Progress     io.Writer
	// Run runs one step (Run when nil): a coordinated sweep runs each step
	// on its workers.
	Run func(context.Context, Config) (*report.Result, error)
}

// RunSweep runs the steps in order until one breaks the SLO (then, with
// Binary, bisects between the last passing and the first broken level).
func RunSweep(ctx context.Context, sc SweepConfig) (*report.SweepResult, error) {
	if len(sc.Steps.Values) == 0 {
		return nil, &InputError{errors.New("a sweep needs steps")}
	}
	if err := sc.check(); err != nil {
		return nil, &InputError{err}
	}
	if sc.Tolerance <= 0 {
		sc.Tolerance = 0.05
	}
	if sc.Stability <= 0 {
		sc.Stability = 0.2
	}
	out := &report.SweepResult{Version: report.ResultVersion, Tool: "loadprof " + Version, Kind: "sweep", Loop: "open"}
	if sc.Closed {
		out.Loop = "closed"
	}
	profileAt, profileMax, err := profileSelection(sc.ProfileSteps, len(sc.Steps.Values))
	if err != nil {
		return nil, &InputError{err}
	}
	lastPass, firstFail := -1.0, -1.0
	for i, level := range sc.Steps.Values {
		if ctx.Err() != nil {
			out.Stopped = "interrupted"
			break
		}
		step, err := runStep(ctx, sc, level, profileAt[i], "")
		if step != nil {
			out.Steps = append(out.Steps, *step)
		}
		if err != nil && len(out.Steps) == 0 {
			return nil, err // nothing was measured: the error alone, as a plain run gives it
		}
		if err != nil {
			// The step did not end as a step (a worker of a coordinated
			// run was lost): it is neither passed nor broken, and the
			// steps before it still count.
			why := err.Error()
			var ss interface{ SweepStop() string }
			if errors.As(err, &ss) {
				why = ss.SweepStop()
			}
			if step != nil {
				out.Steps[len(out.Steps)-1].Stopped = why
			}
			out.Stopped = fmt.Sprintf("stopped at step %d (%g): %s", i+1, level, why)
			out.MaxPassing = passing(lastPass)
			return out, err
		}
		if step.Result != nil && step.Result.Interrupted {
			out.Stopped = fmt.Sprintf("interrupted during step %d (%g)", i+1, level)
			break
		}
		if !step.Pass {
			firstFail = level
			out.Stopped = fmt.Sprintf("step %d (%g) broke the SLO: %s", i+1, level, strings.Join(step.Broken, "; "))
			break
		}
		lastPass = level
	}
	if out.Stopped == "" {
		out.Stopped = "every step passed"
	}
	if sc.Binary && firstFail > 0 && ctx.Err() == nil {
		lo, hi := lastPass, firstFail
		if lo < 0 {
			lo = 0
		}
		for (hi-lo)/hi > sc.Tolerance && ctx.Err() == nil {
			mid := (lo + hi) / 2
			if sc.Closed {
				mid = math.Floor(mid)
				if mid <= lo {
					break
				}
			}
			step, err := runStep(ctx, sc, mid, false, "")
			if step != nil {
				step.Bisection = true
				out.Steps = append(out.Steps, *step)
			}
			if err != nil {
				return out, err
			}
			if step.Pass {
				lo, lastPass = mid, mid
			} else {
				hi = mid
			}
		}
		out.Stopped += fmt.Sprintf("; bisection to within %g%%", 100*sc.Tolerance)
	}
	if lastPass > 0 {
		out.MaxPassing = passing(lastPass)
		if profileMax && ctx.Err() == nil {
			// Its own run name: the step may have been profiled already.
			step, err := runStep(ctx, sc, lastPass, true, "max_")
			if step != nil {
				out.Steps = append(out.Steps, *step)
			}
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// passing is a sweep's max_passing: nil when no step passed (-1).
func passing(level float64) *float64 {
	if level <= 0 {
		return nil
	}
	return &level
}

// profileSelection reads ProfileSteps: a comma list of all, first,
// last, max and 1-based step numbers. It returns the steps to profile and
// whether to run the highest passing level again with a profile.
func profileSelection(spec string, n int) ([]bool, bool, error) {
	at := make([]bool, n)
	wantMax := false
	if strings.TrimSpace(spec) == "" {
		return at, false, nil
	}
	for _, f := range strings.Split(spec, ",") {
		switch f = strings.TrimSpace(f); f {
		case "max":
			wantMax = true
		case "all":
			for i := range at {
				at[i] = true
			}
		case "first":
			at[0] = true
		case "last":
			at[n-1] = true
		default:
			k, err := strconv.Atoi(f)
			if err != nil || k < 1 || k > n {
				return nil, false, setting.Invalid("bench.SweepConfig.ProfileSteps", fmt.Sprintf("%q", spec), fmt.Sprintf("want all, first, last, max or step numbers 1..%d", n))
			}
			at[k-1] = true
		}
	}
	return at, wantMax, nil
}

// runStep runs one level, again while its halves disagree (up to Repeats).
func runStep(ctx context.Context, sc SweepConfig, level float64, withProfile bool, runPrefix string) (*report.StepResult, error) {
	cfg := sc.Base
	cfg.IntervalLog = nil // one run's; a sweep keeps every step's histogram in its result
	name := fmt.Sprintf("%srate_%g", runPrefix, level)
	if sc.Closed {
		cfg.Plan.Concurrency, cfg.Plan.Rate = int(level), 0
		name = fmt.Sprintf("%sconcurrency_%d", runPrefix, int(level))
	} else {
		cfg.Plan.Rate, cfg.Plan.Concurrency = level, 0
	}
	if !withProfile {
		cfg.Profile = nil
	} else if cfg.Profile != nil {
		p := *cfg.Profile
		p.Options.Run = name // each trace is a TensorBoard run named after its step
		cfg.Profile = &p
	}
	step := &report.StepResult{Level: level}
	for attempt := 0; attempt <= sc.Repeats; attempt++ {
		step.Attempts = attempt + 1
		run := sc.Run
		if run == nil {
			run = Run
		}
		res, err := run(ctx, cfg)
		if res == nil {
			// No load was sent (the preflight failed, or bad input): the
			// step has nothing to judge and the sweep cannot go on.
			if step.Result == nil {
				return nil, err
			}
			return step, err
		}
		step.Result = res
		var te *TargetError
		if err != nil && !errors.As(err, &te) {
			return step, err
		}
		step.Broken = sc.SLO.Broken(res)
		if err != nil {
			step.Broken = append(step.Broken, err.Error())
		}
		if res.Interrupted {
			// Part of a step is not the step: it can neither pass nor be
			// the answer (review: a half-run step named the highest passing).
			step.Broken = append(step.Broken, "interrupted before the end of its steady phase")
		}
		step.Pass = len(step.Broken) == 0
		if p := res.Profile; p != nil && p.Result != nil && (p.Saved != profile.SavedNone || p.ClientTrace != "") {
			step.TraceRun = p.Run // the run the capture got (a suffix when the name was taken), never one it did not write
		}
		step.Unstable = unstable(res, sc.Stability)
		if sc.Progress != nil {
			streams := ""
			if res.TTFT != nil && res.ITL != nil {
				streams = fmt.Sprintf(", ttft p99 %s ms, itl p99 %s ms", report.FormatMs(res.TTFT.P99), report.FormatMs(res.ITL.P99))
			}
			fmt.Fprintf(sc.Progress, "step %s: %.1f req/s, p99 %s ms%s, pass %v %s\n", name, res.ThroughputRPS, report.FormatMs(res.Latency.P99), streams, step.Pass, step.Unstable)
		}
		if step.Unstable == "" || ctx.Err() != nil {
			break
		}
	}
	return step, nil
}

// unstable compares the two halves of a step's steady seconds: throughput
// and p99 that differ by more than tol mean the step had not settled.
func unstable(r *report.Result, tol float64) string {
	var steady []int
	for i, s := range r.Series {
		if float64(s.Second) >= r.Phases.Steady.Start && float64(s.Second+1) <= r.Phases.Steady.End {
			steady = append(steady, i)
		}
	}
	if len(steady) < 4 {
		return ""
	}
	half := len(steady) / 2
	avg := func(idx []int) (rps, p99 float64) {
		for _, i := range idx {
			rps += float64(r.Series[i].Requests)
			p99 += float64(r.Series[i].P99Us)
		}
		return rps / float64(len(idx)), p99 / float64(len(idx))
	}
	r1, p1 := avg(steady[:half])
	r2, p2 := avg(steady[half:])
	rel := func(a, b float64) float64 {
		if math.Max(a, b) == 0 {
			return 0
		}
		return math.Abs(a-b) / math.Max(a, b)
	}
	switch {
	case rel(r1, r2) > tol:
		return fmt.Sprintf("throughput %.0f vs %.0f req/s between halves", r1, r2)
	case rel(p1, p2) > tol:
		return fmt.Sprintf("p99 %.1f vs %.1f ms between halves", p1/usPerMs, p2/usPerMs)
	}
	return ""
}
