package report

import (
	"fmt"
	"math"
	"strings"
)

// VerdictDiffers is the verdict of a row that moved but has no better
// or worse way: the server's request count, which follows the run's
// length and rate.
const VerdictDiffers = "differs"

// serverMetric is one figure of the server block compare puts beside the
// client's rows when both runs scraped the server (--metrics).
type serverMetric struct {
	name      string
	higherBad bool
	neutral   bool // neither way is better
	// read is the figure, and the histogram bucket it lies in for a
	// percentile estimated from buckets (nil otherwise); ok is false when
	// the run's server block lacks it.
	read func(*ServerReport) (v float64, bucket *ServerQuantile, ok bool)
	unit string
}

func serverQuantile(pick func(*ServerLatency) *ServerQuantile) func(*ServerReport) (float64, *ServerQuantile, bool) {
	return func(s *ServerReport) (float64, *ServerQuantile, bool) {
		if !hasLatency(s) {
			return 0, nil, false
		}
		q := pick(s.LatencyMs)
		if q == nil {
			return 0, nil, false
		}
		return q.Ms, q, true
	}
}

// hasLatency reports whether s has a server latency over some requests:
// a family that counted none has a mean of 0 that is no figure.
func hasLatency(s *ServerReport) bool { return s.LatencyMs != nil && s.LatencyMs.Count > 0 }

var serverMetrics = []serverMetric{
	{name: "server_requests", neutral: true, read: func(s *ServerReport) (float64, *ServerQuantile, bool) {
		if s.Requests == nil {
			return 0, nil, false
		}
		return *s.Requests, nil, true
	}},
	{name: "server_mean", higherBad: true, unit: "ms", read: func(s *ServerReport) (float64, *ServerQuantile, bool) {
		if !hasLatency(s) {
			return 0, nil, false
		}
		return s.LatencyMs.Mean, nil, true
	}},
	{name: "server_p50", higherBad: true, unit: "ms", read: serverQuantile(func(l *ServerLatency) *ServerQuantile { return l.P50 })},
	{name: "server_p99", higherBad: true, unit: "ms", read: serverQuantile(func(l *ServerLatency) *ServerQuantile { return l.P99 })},
	{name: "outside", higherBad: true, unit: "ms", read: func(s *ServerReport) (float64, *ServerQuantile, bool) {
		// A negative one (a result written before they were null) is no
		// time: the server's mean exceeded the client's.
		if s.OutsideMs == nil || *s.OutsideMs < 0 {
			return 0, nil, false
		}
		return *s.OutsideMs, nil, true
	}},
}

// compareServer is the rows of the server's figures either run has. A
// figure limits names (--max server_p99=10%) is judged as a client
// latency is: regressed when it rose by more, noisy rather than
// regressed when both percentile estimates lie in one of the server's
// buckets (the change is then the interpolation's), and regressed when
// a run lacks it (a gate that asked for it cannot pass without it).
func compareServer(base, next *Result, limits map[string]*Limit) []Row {
	if (base.Server == nil || next.Server == nil) && !limitsServer(limits) {
		return nil
	}
	var rows []Row
	for _, m := range serverMetrics {
		limit := limits[m.name]
		if (base.Server == nil || next.Server == nil) && limit == nil {
			continue // only the limited figures of a run without its server block
		}
		b, bq, okB := readServer(m, base.Server)
		n, nq, okN := readServer(m, next.Server)
		switch {
		case !okB && !okN && limit == nil:
			continue
		case !okB || !okN:
			// One run lacks it: "-" on its side, no change to judge.
			row := Row{Metric: m.name, Base: b, New: n, Unit: m.unit, Percent: math.NaN(), Absent: "new", Limit: limit}
			switch {
			case !okB && !okN:
				row.Absent = "both"
			case !okB:
				row.Absent = "base"
			}
			if limit != nil {
				row.Broken, row.Verdict = true, VerdictRegressed
			}
			rows = append(rows, row)
			continue
		}
		row := Row{Metric: m.name, Base: b, New: n, Change: n - b, Unit: m.unit, Percent: percentChange(b, n), Limit: limit}
		if !m.neutral {
			row.Worse = (m.higherBad && row.Change > 0) || (!m.higherBad && row.Change < 0)
			row.Improved = row.Change != 0 && !row.Worse
		}
		if bq != nil && nq != nil && row.Change != 0 && sameBucket(bq, nq) {
			row.Noisy = "both estimates lie in the server's bucket " + BucketBounds(bq) + " ms: the change is the interpolation's, not measured"
		}
		switch {
		case limit != nil:
			allowed := limit.Value
			if limit.Percent {
				allowed = math.Abs(b) * limit.Value / 100
			}
			row.Broken = row.Change > allowed
			switch {
			case !row.Broken:
				row.Verdict = VerdictPass
			case row.Noisy != "":
				row.Verdict = VerdictNoisy
			default:
				row.Verdict = VerdictRegressed
			}
		case row.Change == 0:
			row.Verdict = VerdictSame
		case m.neutral:
			row.Verdict = VerdictDiffers
		case row.Worse:
			row.Verdict = VerdictWorse
		default:
			row.Verdict = VerdictBetter
		}
		rows = append(rows, row)
	}
	return rows
}

// limitsServer reports whether limits hold a server figure's.
func limitsServer(limits map[string]*Limit) bool {
	for _, m := range serverMetrics {
		if limits[m.name] != nil {
			return true
		}
	}
	return false
}

// readServer is m.read of s, nothing of a run without a server block.
func readServer(m serverMetric, s *ServerReport) (float64, *ServerQuantile, bool) {
	if s == nil {
		return 0, nil, false
	}
	return m.read(s)
}

func sameBucket(a, b *ServerQuantile) bool {
	if a.BucketLowMs != b.BucketLowMs || (a.BucketHighMs == nil) != (b.BucketHighMs == nil) {
		return false
	}
	return a.BucketHighMs == nil || *a.BucketHighMs == *b.BucketHighMs
}

// serverCompareNotes say why the server's rows may not compare.
func serverCompareNotes(base, next *Result) []string {
	bs, ns := base.Server, next.Server
	switch {
	case bs == nil && ns == nil:
		return nil
	case bs == nil || ns == nil:
		which := "new"
		if bs != nil {
			which = "base"
		}
		return []string{fmt.Sprintf("only the %s run scraped the server's metrics (--metrics): its server figures are not compared", which)}
	}
	var notes []string
	for _, side := range []struct {
		which string
		s     *ServerReport
	}{{"base", bs}, {"new", ns}} {
		if side.s.Requests == nil && !hasLatency(side.s) {
			why := "its endpoints exported no request family loadprof knows for the model"
			if !scraped(side.s.Endpoints) {
				why = "no scrape of its endpoints succeeded"
			}
			notes = append(notes, fmt.Sprintf("the %s run scraped the server's metrics but has no request figures (%s): its server rows say -", side.which, why))
		}
	}
	for _, side := range []struct {
		which string
		r     *Result
	}{{"base", base}, {"new", next}} {
		if OutsideNone(side.r) {
			notes = append(notes, fmt.Sprintf("the %s run has no time outside the server: %s", side.which, strings.TrimPrefix(NegativeOutside(side.r), "none: ")))
		}
	}
	if bs.Server != "" && ns.Server != "" && bs.Server != ns.Server {
		notes = append(notes, fmt.Sprintf("the server figures come from different servers (base %s, new %s)", bs.Server, ns.Server))
	}
	if b, n := latencyFamily(bs), latencyFamily(ns); b != "" && n != "" && b != n {
		notes = append(notes, fmt.Sprintf("the server latencies are different families (base %s, new %s): compare like with like", b, n))
	}
	return notes
}

func latencyFamily(s *ServerReport) string {
	if s.LatencyMs == nil {
		return ""
	}
	return s.LatencyMs.Family
}

// percentChange is the relative change from base to next in percent, NaN
// when base is 0.
func percentChange(base, next float64) float64 {
	if base == 0 {
		return math.NaN()
	}
	return 100 * (next - base) / base
}
