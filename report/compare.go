package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Limit is one regression threshold of `loadprof compare --max`. Value is
// how far the metric may move the bad way, never negative: up for a
// latency and the errors, down for a throughput.
type Limit struct {
	Metric   string  // "p99", "rps", "errors", ...
	Value    float64 // allowed worsening (or, for errors, the allowed count or rate)
	Percent  bool    // Value is a percentage of the base value
	Absolute string  // unit of an absolute Value: "ms", "rps" or "" (count)
}

// String says the limit with the sign of the direction it guards:
// "<= +10%" for p99, ">= -5%" for rps, "<= 0" for errors.
func (l Limit) String() string {
	m, _ := findMetric(l.Metric)
	unit := l.Absolute
	if l.Percent {
		unit = "%"
	}
	switch {
	case m.isErrCount:
		return fmt.Sprintf("<= %g%s", l.Value, unit)
	case m.higherBad:
		return fmt.Sprintf("<= +%g%s", l.Value, unit)
	}
	return fmt.Sprintf(">= -%g%s", l.Value, unit)
}

// metric describes how one number of a result is read and which way is
// worse.
type metric struct {
	name       string
	higherBad  bool
	quantile   float64 // for percentiles: the fraction of requests below it
	read       func(*Result) float64
	unit       string
	isLatency  bool
	isRate     bool
	isErrCount bool
	// perSecond reads the same quantity from one second of the series,
	// for the run's own variation; nil for the metrics the series does
	// not hold (a p99's spread would overstate a p90's).
	perSecond func(Second) (float64, bool)
	// stream is set for an OpenAI-compatible target's figures: the count
	// a percentile is taken over, and whether r has the figure at all.
	// Their rows are left out when neither run has them.
	stream func(*Result) (count int64, ok bool)
}

// streamStats reads an LLM figure's Stats, zero when absent.
func streamStats(pick func(*Result) *Stats) (func(*Result) (int64, bool), func(*Result) *Stats) {
	get := func(r *Result) *Stats {
		if s := pick(r); s != nil {
			return s
		}
		return &Stats{}
	}
	return func(r *Result) (int64, bool) {
		s := pick(r)
		if s == nil {
			return 0, false
		}
		return s.Count, true
	}, get
}

var (
	ttftCount, ttftOf = streamStats(func(r *Result) *Stats { return r.TTFT })
	itlCount, itlOf   = streamStats(func(r *Result) *Stats { return r.ITL })
	tpotCount, tpotOf = streamStats(func(r *Result) *Stats { return r.TPOT })
	e2eCount, e2eOf   = streamStats(func(r *Result) *Stats { return r.E2E })
)

// outputTokensPerS is a result's output tokens/s, and whether it has one.
func outputTokensPerS(r *Result) (int64, bool) {
	if r.OutputTokensPerS == nil {
		return 0, false
	}
	return 0, true
}

func secondP50(s Second) (float64, bool) { return float64(s.P50Us) / usPerMs, s.P50Us > 0 }
func secondP99(s Second) (float64, bool) { return float64(s.P99Us) / usPerMs, s.P99Us > 0 }
func secondMax(s Second) (float64, bool) { return float64(s.MaxUs) / usPerMs, s.MaxUs > 0 }

var metrics = []metric{
	{name: "rps", read: func(r *Result) float64 { return r.ThroughputRPS }, unit: "req/s", isRate: true,
		perSecond: func(s Second) (float64, bool) { return float64(s.Requests), true }},
	{name: "ok_rps", read: func(r *Result) float64 { return r.SuccessRPS }, unit: "req/s", isRate: true,
		perSecond: func(s Second) (float64, bool) { return float64(s.Requests - s.Errors), true }},
	{name: "min", higherBad: true, read: func(r *Result) float64 { return r.Latency.Min }, unit: "ms", isLatency: true},
	{name: "mean", higherBad: true, read: func(r *Result) float64 { return r.Latency.Mean }, unit: "ms", isLatency: true},
	{name: "p50", higherBad: true, quantile: 0.50, read: func(r *Result) float64 { return r.Latency.P50 }, unit: "ms", isLatency: true, perSecond: secondP50},
	{name: "p90", higherBad: true, quantile: 0.90, read: func(r *Result) float64 { return r.Latency.P90 }, unit: "ms", isLatency: true},
	{name: "p95", higherBad: true, quantile: 0.95, read: func(r *Result) float64 { return r.Latency.P95 }, unit: "ms", isLatency: true},
	{name: "p99", higherBad: true, quantile: 0.99, read: func(r *Result) float64 { return r.Latency.P99 }, unit: "ms", isLatency: true, perSecond: secondP99},
	{name: "p999", higherBad: true, quantile: 0.999, read: func(r *Result) float64 { return r.Latency.P999 }, unit: "ms", isLatency: true},
	{name: "max", higherBad: true, read: func(r *Result) float64 { return r.Latency.Max }, unit: "ms", isLatency: true, perSecond: secondMax},
	{name: "errors", higherBad: true, read: func(r *Result) float64 { return float64(sum(r.Errors)) }, isErrCount: true},
	// An OpenAI-compatible target's stream figures (limits as latency's
	// and rps's).
	{name: "ttft_p99", higherBad: true, quantile: 0.99, read: func(r *Result) float64 { return ttftOf(r).P99 }, unit: "ms", isLatency: true, stream: ttftCount},
	{name: "itl_p99", higherBad: true, quantile: 0.99, read: func(r *Result) float64 { return itlOf(r).P99 }, unit: "ms", isLatency: true, stream: itlCount},
	{name: "tpot_mean", higherBad: true, read: func(r *Result) float64 { return tpotOf(r).Mean }, unit: "ms", isLatency: true, stream: tpotCount},
	{name: "e2e_p99", higherBad: true, quantile: 0.99, read: func(r *Result) float64 { return e2eOf(r).P99 }, unit: "ms", isLatency: true, stream: e2eCount},
	{name: "output_tokens_per_s", read: func(r *Result) float64 {
		if r.OutputTokensPerS == nil {
			return 0
		}
		return *r.OutputTokensPerS
	}, unit: "tok/s", isRate: true, stream: outputTokensPerS},
}

func findMetric(name string) (metric, bool) {
	for _, m := range metrics {
		if m.name == name {
			return m, true
		}
	}
	// The server's figures (compareserver.go) take a limit like the
	// client's latencies: in % or ms, failing when they rise by more.
	for _, m := range serverMetrics {
		if m.name == name && !m.neutral {
			return metric{name: m.name, higherBad: m.higherBad, unit: m.unit, isLatency: true}, true
		}
	}
	return metric{}, false
}

// ParseLimits reads --max "p99=10%,p50=2ms,rps=5%,errors=0". A limit is
// how far the metric may move the way that is worse for it: a latency up,
// a throughput down. The sign may be written ("p99=+10%", "rps=-5%") but
// must then agree with that direction; a metric may be limited once.
func ParseLimits(spec string) ([]Limit, error) {
	var out []Limit
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	given := map[string]string{}
	parts := strings.Split(spec, ",")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("report.ParseLimits %q: limit %d of %d is empty (a comma too many?); want METRIC=CHANGE, e.g. p99=10%%", spec, i+1, len(parts))
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "p99.9" {
			name = "p999"
		}
		m, known := findMetric(name)
		if name == "server_requests" {
			return nil, fmt.Errorf("report.ParseLimits %q: server_requests takes no limit (the server's count follows the run's length and rate; neither way is worse)", part)
		}
		if !ok || !known {
			return nil, fmt.Errorf("report.ParseLimits %q: want METRIC=CHANGE with METRIC one of %s", part, metricNames())
		}
		if before, twice := given[name]; twice {
			return nil, fmt.Errorf("report.ParseLimits: %s is limited twice (%s and %s); give each metric one limit", name, before, part)
		}
		given[name] = part
		l := Limit{Metric: name}
		val = strings.TrimSpace(val)
		switch {
		case strings.HasSuffix(val, "%"):
			l.Percent, val = true, strings.TrimSuffix(val, "%")
		case strings.HasSuffix(val, "ms") && m.isLatency:
			l.Absolute, val = "ms", strings.TrimSuffix(val, "ms")
		case m.isRate && m.stream != nil:
			l.Absolute = "tok/s"
		case m.isRate:
			l.Absolute = "rps"
		case m.isLatency:
			return nil, fmt.Errorf("report.ParseLimits %q: a latency limit needs %% or ms, e.g. %s=10%% or %s=5ms", part, name, name)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("report.ParseLimits %q: %q is not a number", part, val)
		}
		negative, positive := strings.HasPrefix(val, "-"), strings.HasPrefix(val, "+")
		switch {
		case m.isErrCount && negative:
			return nil, fmt.Errorf("report.ParseLimits %q: an error limit is a count or a rate, not negative", part)
		case m.isErrCount && !l.Percent && v != math.Trunc(v):
			// Without %, the limit counts errors: 2.5 of them means nothing,
			// and is most likely a rate missing its %.
			return nil, fmt.Errorf("report.ParseLimits %q: an error count is a whole number (errors=2); a rate of the requests takes %%, e.g. %s=%s%%", part, name, val)
		case m.higherBad && negative && !m.isErrCount:
			return nil, fmt.Errorf("report.ParseLimits %q: %s regresses when it rises; write %s=%s (fails when it rises by more)", part, name, name, limitMagnitude(part))
		case !m.higherBad && positive:
			return nil, fmt.Errorf("report.ParseLimits %q: %s regresses when it drops; write %s=%s or %s=-%s (fails when it drops by more)", part, name, name, limitMagnitude(part), name, limitMagnitude(part))
		}
		l.Value = math.Abs(v)
		out = append(out, l)
	}
	return out, nil
}

// limitMagnitude is the value of a METRIC=CHANGE limit without its sign.
func limitMagnitude(part string) string {
	_, val, _ := strings.Cut(part, "=")
	return strings.TrimLeft(strings.TrimSpace(val), "+-")
}

func metricNames() string {
	names := make([]string, 0, len(metrics)+len(serverMetrics))
	for _, m := range metrics {
		names = append(names, m.name)
	}
	for _, m := range serverMetrics {
		if !m.neutral {
			names = append(names, m.name)
		}
	}
	return strings.Join(names, ", ")
}

// Verdicts of a row of a comparison.
const (
	VerdictPass      = "pass"      // limited, and within its limit
	VerdictRegressed = "regressed" // limited, over its limit by more than the runs vary
	VerdictNoisy     = "noisy"     // limited and over its limit, but the runs' own variation covers the change
	VerdictBetter    = "better"    // not limited: moved the good way
	VerdictWorse     = "worse"     // not limited: moved the bad way
	VerdictSame      = "same"      // not limited: unchanged
)

// Row is one metric of a comparison.
type Row struct {
	Metric   string
	Base     float64
	New      float64
	Change   float64 // New - Base
	Percent  float64 // relative change, NaN when Base is 0
	Limit    *Limit
	Broken   bool   // over the limit (a regression, or noise when Verdict says so)
	Noisy    string // why the change cannot be told from noise, or ""
	Unit     string
	Worse    bool // the change goes the bad way
	Improved bool
	// Spread is how far the metric moves between two runs by chance
	// alone, from the per-second series both runs carry (see
	// perSecondSpread); 0 when they do not carry enough seconds.
	Spread  float64
	Verdict string
	// Absent is "base", "new" or "both" when that run has no such figure
	// (a server figure its endpoints did not give): the row says "-"
	// there, with no change and no verdict unless the figure is limited.
	Absent string
}

// cells are the row's base, new and change as the text and the page say
// them.
func (r Row) cells() (base, next, change string) {
	base, next, change = num(r.Base, r.Unit), num(r.New, r.Unit), signed(r.Change, r.Unit)
	switch r.Absent {
	case "base":
		base, change = "-", "-"
	case "new":
		next, change = "-", "-"
	case "both":
		base, next, change = "-", "-", "-"
	}
	return base, next, change
}

// Comparison is the outcome of `loadprof compare`.
type Comparison struct {
	Rows   []Row
	Broken []string // metrics whose limit is broken by more than the runs vary: the regressions
	Noisy  []string // metrics over their limit by less than the runs vary
	Notes  []string // why the runs may not be comparable
}

// Compare checks next against base with limits. Every metric gets a row;
// only limited ones can fail.
//
// A limited metric over its limit is noisy rather than regressed when the
// change is within what the runs' own variation explains: a percentile
// with fewer than 10 requests above it in either run, or a change smaller
// than the spread of the two runs' per-second values (perSecondSpread).
func Compare(base, next *Result, limits []Limit) Comparison {
	var c Comparison
	byMetric := map[string]*Limit{}
	for i := range limits {
		byMetric[limits[i].Metric] = &limits[i]
	}
	for _, m := range metrics {
		row := Row{Metric: m.name, Base: m.read(base), New: m.read(next), Unit: m.unit, Limit: byMetric[m.name]}
		if m.stream != nil {
			_, inBase := m.stream(base)
			_, inNext := m.stream(next)
			switch {
			case !inBase && !inNext && row.Limit == nil:
				continue // not an OpenAI-compatible target: no such rows
			case !inBase && !inNext:
				row.Absent = "both"
			case !inBase:
				row.Absent = "base"
			case !inNext:
				row.Absent = "new"
			}
			if row.Absent != "" {
				row.Percent = math.NaN() // no change to give: "-", not +0.0%
				if row.Limit != nil {
					row.Verdict, row.Broken = VerdictRegressed, true
					c.Broken = append(c.Broken, m.name)
					which := "the " + row.Absent + " run has"
					if row.Absent == "both" {
						which = "neither run has"
					}
					c.Notes = append(c.Notes, fmt.Sprintf("%s is limited (--max) but %s no stream figures (an OpenAI-compatible target's): the limit cannot pass", m.name, which))
				}
				c.Rows = append(c.Rows, row)
				continue
			}
		}
		row.Change = row.New - row.Base
		row.Percent = math.NaN()
		if row.Base != 0 {
			row.Percent = 100 * row.Change / row.Base
		}
		row.Worse = (m.higherBad && row.Change > 0) || (!m.higherBad && row.Change < 0)
		row.Improved = row.Change != 0 && !row.Worse
		if m.quantile > 0 {
			for _, r := range []*Result{base, next} {
				count, what := r.Latency.Count, "requests"
				if m.stream != nil {
					count, _ = m.stream(r)
					what = "values"
				}
				if above := float64(count) * (1 - m.quantile); count > 0 && above < 10 {
					row.Noisy = fmt.Sprintf("%s from %d %s: %.1f above it; want at least 10", m.name, count, what, above)
					break
				}
			}
		}
		if m.perSecond != nil {
			row.Spread = perSecondSpread(base, next, m.perSecond)
			if row.Noisy == "" && row.Spread > 0 && math.Abs(row.Change) <= row.Spread {
				row.Noisy = fmt.Sprintf("the change is within the runs' own variation (±%s%s, from their per-second series)", num(row.Spread, m.unit), unitSuffix(m.unit))
			}
		}
		if row.Change == 0 {
			row.Noisy = "" // no change is nothing to tell from noise: it passes, or is the same
		}
		switch {
		case row.Limit != nil:
			row.Broken = broken(m, *row.Limit, row, next)
			row.Verdict = VerdictPass
			if row.Broken {
				row.Verdict = VerdictRegressed
				if row.Noisy != "" && Successes(next) > 0 {
					row.Verdict = VerdictNoisy
					c.Noisy = append(c.Noisy, m.name)
				} else {
					c.Broken = append(c.Broken, m.name)
				}
			}
		case row.Worse:
			row.Verdict = VerdictWorse
		case row.Improved:
			row.Verdict = VerdictBetter
		default:
			row.Verdict = VerdictSame
		}
		c.Rows = append(c.Rows, row)
	}
	c.Notes = append(append(comparabilityNotes(base, next), serverCompareNotes(base, next)...), c.Notes...)
	for _, row := range compareServer(base, next, byMetric) {
		switch row.Verdict {
		case VerdictRegressed:
			c.Broken = append(c.Broken, row.Metric)
			if row.Absent != "" {
				which := "the " + row.Absent + " run has"
				if row.Absent == "both" {
					which = "neither run has"
				}
				c.Notes = append(c.Notes, fmt.Sprintf("%s is limited (--max) but %s no such server figure (--metrics): the limit cannot pass", row.Metric, which))
			}
		case VerdictNoisy:
			c.Noisy = append(c.Noisy, row.Metric)
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// CountNoisyAsRegressed turns every noisy verdict into a regression, for a
// gate that would rather fail on a change it cannot tell from noise
// (compare --noisy-fails). The rows keep saying why they are noisy.
func (c *Comparison) CountNoisyAsRegressed() {
	for i := range c.Rows {
		if c.Rows[i].Verdict == VerdictNoisy {
			c.Rows[i].Verdict = VerdictRegressed
		}
	}
	c.Broken, c.Noisy = nil, nil
	for _, r := range c.Rows {
		if r.Verdict == VerdictRegressed {
			c.Broken = append(c.Broken, r.Metric)
		}
	}
}

func unitSuffix(unit string) string {
	if unit == "ms" {
		return " ms"
	}
	if unit == "req/s" || unit == "tok/s" {
		return " " + unit
	}
	return ""
}

// perSecondSpread is how far a metric can differ between two runs by
// chance: twice the standard error of the difference of the two runs'
// means of per-second values (pick), over the whole seconds of each
// steady phase. 0 when either run has fewer than 3 such seconds.
//
// A per-second p99 is not the run's p99, but how much it wanders from
// second to second is the run's own variation, which is what a change
// has to exceed to mean something. Seconds count as independent samples,
// which neighbouring seconds of a drifting run are not quite: the spread
// is then on the small side, and a change is called noisy only when it
// is clearly within the runs' variation.
func perSecondSpread(base, next *Result, pick func(Second) (float64, bool)) float64 {
	var variance float64
	for _, r := range []*Result{base, next} {
		xs := steadySeconds(r, pick)
		if len(xs) < 3 {
			return 0
		}
		mean := 0.0
		for _, x := range xs {
			mean += x
		}
		mean /= float64(len(xs))
		ss := 0.0
		for _, x := range xs {
			ss += (x - mean) * (x - mean)
		}
		n := float64(len(xs))
		variance += ss / (n - 1) / n
	}
	return 2 * math.Sqrt(variance)
}

// steadySeconds are pick's values over the whole seconds of r's steady
// phase: warm-up and the partial seconds at either end would read as
// variation that is not there.
func steadySeconds(r *Result, pick func(Second) (float64, bool)) []float64 {
	st := r.Phases.Steady
	var xs []float64
	last := -1
	for _, s := range r.Series {
		last = max(last, s.Second)
	}
	for _, s := range r.Series {
		t := float64(s.Second)
		if st.End > st.Start {
			if t < math.Ceil(st.Start-1e-9) || t+1 > st.End+1e-9 {
				continue
			}
		} else if s.Second == last {
			continue // phases unknown: leave out at least the partial last second
		}
		if v, ok := pick(s); ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// comparabilityNotes say why the two runs may not measure the same thing,
// so that a change between them may not be the server's.
func comparabilityNotes(base, next *Result) []string {
	var notes []string
	if base.LatencyFrom != next.LatencyFrom {
		notes = append(notes, fmt.Sprintf("the runs measure latency differently (base from %s, new from %s): compare like with like", base.LatencyFrom, next.LatencyFrom))
	}
	if base.Loop == next.Loop {
		key, what := "rate", "offered rates differ"
		if base.Loop == "closed" {
			key, what = "concurrency", "concurrencies differ"
		}
		if b, n := base.Config[key], next.Config[key]; b != nil && n != nil && !sameSetting(b, n) {
			notes = append(notes, fmt.Sprintf("the %s (base --%s %s, new --%s %s): the server is under a different load, so its latency differs whatever the code", what, key, FormatSetting(b), key, FormatSetting(n)))
		}
	}
	if b, n := base.Transport, next.Transport; b != "" && n != "" && b != n {
		notes = append(notes, fmt.Sprintf("the transports differ (base %s, new %s): so does the latency the protocol itself adds", b, n))
	}
	if b, n := ProtocolOf(base), ProtocolOf(next); b != n {
		notes = append(notes, fmt.Sprintf("the protocols differ (base %s, new %s): each encodes and decodes the tensors its own way, on the client and on the server", b, n))
	}
	if b, n := base.Client.Engine, next.Client.Engine; b != "" && n != "" && b != n {
		notes = append(notes, fmt.Sprintf("the REST engines differ (base %s, new %s): so does the client's own share of the latency", b, n))
	}
	if bt, nt := base.Config["timeout"], next.Config["timeout"]; bt != nil && nt != nil && !sameSetting(bt, nt) {
		notes = append(notes, fmt.Sprintf("the runs use different --timeout (base %s, new %s): a timed-out request counts as its --timeout, so the shorter one can make a failing server look faster; compare the errors too", FormatSettingOf("timeout", bt), FormatSettingOf("timeout", nt)))
	}
	if base.Loop == "open" && next.Loop == "open" {
		b, n := base.Client.MaxFreeSendLagMs, next.Client.MaxFreeSendLagMs
		if hi, lo := max(b, n), min(b, n); hi > clientLagNoteMs && hi > 2*lo {
			which := "new"
			if b > n {
				which = "base"
			}
			notes = append(notes, fmt.Sprintf("the %s run's client fell behind its schedule with slots free (up to %.1f ms; base %.1f ms, new %.1f ms): a busy client machine, not the server, adds to its latency", which, hi, b, n))
		}
	}
	if bw, nw := hasWindow(base), hasWindow(next); bw != nw {
		which := "new"
		if bw {
			which = "base"
		}
		note := fmt.Sprintf("only the %s run opened a profile window: profiling slows the server while it is open; compare each run's requests outside the window, or profile both", which)
		profiled, other := next, base
		if bw {
			profiled, other = base, next
		}
		if out := profiled.Outside; out != nil && out.Latency.Count > 0 {
			note += fmt.Sprintf(" (outside its window the %s run's p99 is %s ms, the other run's p99 %s ms)", which, FormatMs(out.Latency.P99), FormatMs(other.Latency.P99))
		}
		notes = append(notes, note)
	}
	if base.Target != next.Target {
		notes = append(notes, fmt.Sprintf("different targets: %s vs %s", base.Target, next.Target))
	}
	if Successes(base) == 0 {
		notes = append(notes, fmt.Sprintf("the base run has no successful request (%d requests, %d errors): there is nothing to compare the new run with", base.Requests, sum(base.Errors)))
	}
	if Successes(next) == 0 {
		notes = append(notes, fmt.Sprintf("the new run has no successful request (%d requests, %d errors): every latency and rate limit fails", next.Requests, sum(next.Errors)))
	}
	if base.Version != next.Version && min(base.Version, next.Version) < 2 {
		notes = append(notes, "a version 1 result counts only answered requests in its latency; version 2 also counts failures at the time they failed (timeouts at --timeout): compare like with like")
	}
	for i, r := range []*Result{base, next} {
		if r.Interrupted {
			notes = append(notes, fmt.Sprintf("the %s run was interrupted: its numbers are partial", []string{"base", "new"}[i]))
		}
		if missing := missingWorkers(r); missing != "" {
			notes = append(notes, fmt.Sprintf("the %s run lacks workers (%s): the load they were to send is not in its numbers, and the others carried more", []string{"base", "new"}[i], missing))
		}
	}
	return notes
}

// missingWorkers says which workers of a coordinated run sent nothing
// into its merged figures ("1 lost, 2 never joined"); "" for none.
func missingWorkers(r *Result) string {
	count := map[string]int{}
	var order []string
	for _, w := range r.Workers {
		switch w.Status {
		case WorkerLost, WorkerNeverJoined, WorkerRefused, WorkerFailed:
			if count[w.Status] == 0 {
				order = append(order, w.Status)
			}
			count[w.Status]++
		}
	}
	var parts []string
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[st], strings.ReplaceAll(st, "_", " ")))
	}
	return strings.Join(parts, ", ")
}

// clientLagNoteMs is the send lag with slots free above which the run's
// summary already warns of a busy client machine.
const clientLagNoteMs = 10

// hasWindow reports whether a profile window was open during r.
func hasWindow(r *Result) bool {
	return r.Profile != nil && r.Profile.WindowEndS > r.Profile.WindowStartS
}

// sameSetting compares two config values of result.json, which are
// strings in older files and may be numbers in newer ones: 300 is "300".
func sameSetting(a, b any) bool {
	as, bs := fmt.Sprint(a), fmt.Sprint(b)
	if as == bs {
		return true
	}
	af, errA := strconv.ParseFloat(as, 64)
	bf, errB := strconv.ParseFloat(bs, 64)
	return errA == nil && errB == nil && af == bf
}

func broken(m metric, l Limit, row Row, next *Result) bool {
	if (m.isLatency || m.isRate) && Successes(next) == 0 {
		return true // no latency or rate of a run that never succeeded can pass
	}
	if m.isErrCount {
		if l.Percent {
			rate := 0.0
			if next.Requests > 0 {
				rate = 100 * row.New / float64(next.Requests)
			}
			return rate > l.Value
		}
		return row.New > l.Value
	}
	allowed := l.Value
	if l.Percent {
		allowed = math.Abs(row.Base) * l.Value / 100
	}
	if m.higherBad {
		return row.Change > allowed
	}
	return -row.Change > allowed
}

// Write prints the comparison table.
func (c Comparison) Write(w io.Writer) {
	width := 8 // the server's rows have longer names
	for _, r := range c.Rows {
		width = max(width, len(r.Metric))
	}
	fmt.Fprintf(w, "%-*s %12s %12s %12s %9s  %-10s %s\n", width, "metric", "base", "new", "change", "", "limit", "verdict")
	for _, r := range c.Rows {
		pct := "-"
		if !math.IsNaN(r.Percent) {
			pct = fmt.Sprintf("%+.1f%%", r.Percent)
		}
		limit, status := "", r.Verdict
		if r.Limit != nil {
			limit = r.Limit.String()
		}
		if r.Verdict == VerdictRegressed {
			status = "REGRESSED"
		}
		if r.Verdict == VerdictSame {
			status = ""
		}
		if r.Noisy != "" && r.Verdict != VerdictPass {
			status += " (noisy: " + r.Noisy + ")"
		}
		b, n, change := r.cells()
		fmt.Fprintf(w, "%-*s %12s %12s %12s %9s  %-10s %s\n", width, r.Metric, b, n, change, pct, limit, strings.TrimSpace(status))
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(c.Noisy) > 0 {
		fmt.Fprintf(w, "noisy: %s over the limit by less than the runs vary (not failed; run longer to tell)\n", strings.Join(c.Noisy, ", "))
	}
	if len(c.Broken) > 0 {
		fmt.Fprintf(w, "REGRESSION: %s over the limit\n", strings.Join(c.Broken, ", "))
	} else {
		fmt.Fprintln(w, "no regression")
	}
}

// ParseErrorLimit reads an error budget: a count ("10") or a rate of the
// steady requests ("0.5%"), as --max-errors and compare's errors= take it.
func ParseErrorLimit(spec string) (Limit, error) {
	limits, err := ParseLimits("errors=" + spec)
	if err != nil || len(limits) != 1 {
		return Limit{}, fmt.Errorf("%q: want a count of errors (10) or a rate of the requests (0.5%%)", spec)
	}
	return limits[0], nil
}

// ErrorsOver reports whether r's steady errors break the budget l, and
// describes them against it.
func ErrorsOver(r *Result, l Limit) (bool, string) {
	m, _ := findMetric("errors")
	n := float64(sum(r.Errors))
	row := Row{New: n}
	if l.Percent {
		rate := 0.0
		if r.Requests > 0 {
			rate = 100 * n / float64(r.Requests)
		}
		return broken(m, l, row, r), fmt.Sprintf("%.3g%% of %d requests failed (%g errors), the limit is %s", rate, r.Requests, n, l)
	}
	return broken(m, l, row, r), fmt.Sprintf("%g of %d requests failed, the limit is %s", n, r.Requests, l)
}

// Successes is the number of successful steady requests of r.
func Successes(r *Result) int64 { return r.Requests - sum(r.Errors) }

func num(v float64, unit string) string {
	switch unit {
	case "ms":
		return FormatMs(v)
	case "req/s", "tok/s":
		return fmt.Sprintf("%.1f", v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func signed(v float64, unit string) string {
	s := num(math.Abs(v), unit)
	if v < 0 {
		return "-" + s
	}
	if v > 0 {
		return "+" + s
	}
	return "0"
}
