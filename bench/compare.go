package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Limit is one regression threshold of `loadprof compare --max`.
type Limit struct {
	Metric   string  // "p99", "rps", "errors", ...
	Value    float64 // allowed change (or, for errors, the allowed count or rate)
	Percent  bool    // Value is a percentage of the base value
	Absolute string  // unit of an absolute Value: "ms", "rps" or "" (count)
}

func (l Limit) String() string {
	switch {
	case l.Metric == "errors" && l.Percent:
		return fmt.Sprintf("<= %g%%", l.Value)
	case l.Metric == "errors":
		return fmt.Sprintf("<= %g", l.Value)
	case l.Percent:
		return fmt.Sprintf("%+g%%", l.Value)
	}
	return fmt.Sprintf("%+g%s", l.Value, l.Absolute)
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
}

var metrics = []metric{
	{name: "rps", read: func(r *Result) float64 { return r.ThroughputRPS }, unit: "req/s", isRate: true},
	{name: "ok_rps", read: func(r *Result) float64 { return r.SuccessRPS }, unit: "req/s", isRate: true},
	{name: "min", higherBad: true, read: func(r *Result) float64 { return r.Latency.Min }, unit: "ms", isLatency: true},
	{name: "mean", higherBad: true, read: func(r *Result) float64 { return r.Latency.Mean }, unit: "ms", isLatency: true},
	{name: "p50", higherBad: true, quantile: 0.50, read: func(r *Result) float64 { return r.Latency.P50 }, unit: "ms", isLatency: true},
	{name: "p90", higherBad: true, quantile: 0.90, read: func(r *Result) float64 { return r.Latency.P90 }, unit: "ms", isLatency: true},
	{name: "p95", higherBad: true, quantile: 0.95, read: func(r *Result) float64 { return r.Latency.P95 }, unit: "ms", isLatency: true},
	{name: "p99", higherBad: true, quantile: 0.99, read: func(r *Result) float64 { return r.Latency.P99 }, unit: "ms", isLatency: true},
	{name: "p999", higherBad: true, quantile: 0.999, read: func(r *Result) float64 { return r.Latency.P999 }, unit: "ms", isLatency: true},
	{name: "max", higherBad: true, read: func(r *Result) float64 { return r.Latency.Max }, unit: "ms", isLatency: true},
	{name: "errors", higherBad: true, read: func(r *Result) float64 { return float64(sum(r.Errors)) }, isErrCount: true},
}

func findMetric(name string) (metric, bool) {
	for _, m := range metrics {
		if m.name == name {
			return m, true
		}
	}
	return metric{}, false
}

// ParseLimits reads --max "p99=+10%,p50=+2ms,rps=-5%,errors=0".
func ParseLimits(spec string) ([]Limit, error) {
	var out []Limit
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "p99.9" {
			name = "p999"
		}
		m, known := findMetric(name)
		if !ok || !known {
			return nil, fmt.Errorf("--max %q: want METRIC=CHANGE with METRIC one of %s", part, metricNames())
		}
		l := Limit{Metric: name}
		val = strings.TrimSpace(val)
		switch {
		case strings.HasSuffix(val, "%"):
			l.Percent, val = true, strings.TrimSuffix(val, "%")
		case strings.HasSuffix(val, "ms") && m.isLatency:
			l.Absolute, val = "ms", strings.TrimSuffix(val, "ms")
		case m.isRate && !m.isErrCount:
			l.Absolute = "rps"
		case m.isLatency:
			return nil, fmt.Errorf("--max %q: a latency limit needs %% or ms, e.g. %s=+10%% or %s=+5ms", part, name, name)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("--max %q: %q is not a number", part, val)
		}
		if m.isErrCount && v < 0 {
			return nil, fmt.Errorf("--max %q: an error limit is a count or a rate, not negative", part)
		}
		l.Value = v
		out = append(out, l)
	}
	return out, nil
}

func metricNames() string {
	names := make([]string, len(metrics))
	for i, m := range metrics {
		names[i] = m.name
	}
	return strings.Join(names, ", ")
}

// Row is one metric of a comparison.
type Row struct {
	Metric   string
	Base     float64
	New      float64
	Change   float64 // New - Base
	Percent  float64 // relative change, NaN when Base is 0
	Limit    *Limit
	Broken   bool
	Noisy    string // why the percentile is not trustworthy, or ""
	Unit     string
	Worse    bool // the change goes the bad way
	Improved bool
}

// Comparison is the outcome of `loadprof compare`.
type Comparison struct {
	Rows   []Row
	Broken []string // metrics whose limit is broken
	Notes  []string
}

// Compare checks next against base with limits. Every metric gets a row;
// only limited ones can fail.
func Compare(base, next *Result, limits []Limit) Comparison {
	var c Comparison
	byMetric := map[string]*Limit{}
	for i := range limits {
		byMetric[limits[i].Metric] = &limits[i]
	}
	for _, m := range metrics {
		row := Row{Metric: m.name, Base: m.read(base), New: m.read(next), Unit: m.unit, Limit: byMetric[m.name]}
		row.Change = row.New - row.Base
		row.Percent = math.NaN()
		if row.Base != 0 {
			row.Percent = 100 * row.Change / row.Base
		}
		row.Worse = (m.higherBad && row.Change > 0) || (!m.higherBad && row.Change < 0)
		row.Improved = row.Change != 0 && !row.Worse
		if m.quantile > 0 {
			for _, r := range []*Result{base, next} {
				if above := float64(r.Latency.Count) * (1 - m.quantile); r.Latency.Count > 0 && above < 10 {
					row.Noisy = fmt.Sprintf("%s from %d requests: %.1f above it; want at least 10", m.name, r.Latency.Count, above)
					break
				}
			}
		}
		if l := row.Limit; l != nil {
			row.Broken = broken(m, *l, row, next)
			if row.Broken {
				c.Broken = append(c.Broken, m.name)
			}
		}
		c.Rows = append(c.Rows, row)
	}
	if base.LatencyFrom != next.LatencyFrom {
		c.Notes = append(c.Notes, fmt.Sprintf("the runs measure latency differently (base from %s, new from %s): compare like with like", base.LatencyFrom, next.LatencyFrom))
	}
	if b, n := base.Client.Engine, next.Client.Engine; b != "" && n != "" && b != n {
		c.Notes = append(c.Notes, fmt.Sprintf("the REST engines differ (base %s, new %s): so does the client's own share of the latency", b, n))
	}
	if bt, nt := base.Config["timeout"], next.Config["timeout"]; bt != nil && nt != nil && fmt.Sprint(bt) != fmt.Sprint(nt) {
		c.Notes = append(c.Notes, fmt.Sprintf("the runs use different --timeout (base %v, new %v): a timed-out request counts as its --timeout, so the shorter one can make a failing server look faster; compare the errors too", bt, nt))
	}
	if base.Target != next.Target {
		c.Notes = append(c.Notes, fmt.Sprintf("different targets: %s vs %s", base.Target, next.Target))
	}
	if successes(next) == 0 {
		c.Notes = append(c.Notes, fmt.Sprintf("the new run has no successful request (%d requests, %d errors): every latency and rate limit fails", next.Requests, sum(next.Errors)))
	}
	if base.Version != next.Version && min(base.Version, next.Version) < 2 {
		c.Notes = append(c.Notes, "a version 1 result counts only answered requests in its latency; version 2 also counts failures at the time they failed (timeouts at --timeout): compare like with like")
	}
	for _, r := range []*Result{base, next} {
		if r.Interrupted {
			c.Notes = append(c.Notes, "a run was interrupted: its numbers are partial")
			break
		}
	}
	return c
}

func broken(m metric, l Limit, row Row, next *Result) bool {
	if (m.isLatency || m.isRate) && successes(next) == 0 {
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
		allowed = row.Base * l.Value / 100
	}
	if m.higherBad {
		return row.Change > allowed
	}
	return row.Change < allowed
}

// Write prints the comparison table.
func (c Comparison) Write(w io.Writer) {
	fmt.Fprintf(w, "%-8s %12s %12s %12s %9s  %-9s %s\n", "metric", "base", "new", "change", "", "limit", "")
	for _, r := range c.Rows {
		pct := "-"
		if !math.IsNaN(r.Percent) {
			pct = fmt.Sprintf("%+.1f%%", r.Percent)
		}
		limit, status := "", ""
		if r.Limit != nil {
			limit = r.Limit.String()
			status = "ok"
			if r.Broken {
				status = "REGRESSION"
			}
		} else if r.Worse && r.Change != 0 {
			status = "worse"
		} else if r.Improved {
			status = "better"
		}
		if r.Noisy != "" {
			status += " (noisy: " + r.Noisy + ")"
		}
		fmt.Fprintf(w, "%-8s %12s %12s %12s %9s  %-9s %s\n", r.Metric, num(r.Base, r.Unit), num(r.New, r.Unit), signed(r.Change, r.Unit), pct, limit, strings.TrimSpace(status))
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(c.Broken) > 0 {
		sort.Strings(c.Broken)
		fmt.Fprintf(w, "REGRESSION: %s over the limit\n", strings.Join(c.Broken, ", "))
	} else {
		fmt.Fprintln(w, "no limit broken")
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

// successes is the number of successful steady requests of r.
func successes(r *Result) int64 { return r.Requests - sum(r.Errors) }

func num(v float64, unit string) string {
	switch unit {
	case "ms":
		return ms(v)
	case "req/s":
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
