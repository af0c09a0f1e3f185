package report

import (
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crafted returns a result whose histogram holds n requests spread evenly
// between 1 ms and maxMs, with the given throughput and errors.
func crafted(t *testing.T, n int, maxMs float64, rps float64, errors int64) *Result {
	t.Helper()
	h := newHistogram()
	for i := 1; i <= n; i++ {
		h.RecordValue(int64(1000 + (maxMs-1)*1000*float64(i)/float64(n)))
	}
	enc, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{Version: 1, LatencyFrom: "intended_send", Target: "t", Requests: int64(n), ThroughputRPS: rps, SuccessRPS: rps,
		Latency: StatsOf(h), Histogram: enc, Errors: map[string]int64{}}
	if errors > 0 {
		r.Errors["http_503"] = errors
	}
	return r
}

func TestCompareFlagsOnlyBrokenLimits(t *testing.T) {
	base := crafted(t, 10000, 100, 1000, 0)
	limits, err := ParseLimits("p99=+10%,p50=+2ms,rps=-5%,errors=0")
	if err != nil {
		t.Fatal(err)
	}
	same := Compare(base, crafted(t, 10000, 100, 1000, 0), limits)
	if len(same.Broken) != 0 {
		t.Fatalf("identical runs broke %v", same.Broken)
	}
	slower := Compare(base, crafted(t, 10000, 120, 940, 3), limits) // p99 +20%, p50 +10 ms, rps -6%, 3 errors
	if strings.Join(slower.Broken, ",") != "rps,p50,p99,errors" {
		t.Fatalf("broken %v", slower.Broken)
	}
	within := Compare(base, crafted(t, 10000, 105, 960, 0), limits) // p99 +5%, p50 +2.5 ms
	if strings.Join(within.Broken, ",") != "p50" {
		t.Fatalf("broken %v", within.Broken)
	}
	rate, _ := ParseLimits("errors=0.1%")
	if c := Compare(base, crafted(t, 10000, 100, 1000, 5), rate); len(c.Broken) != 0 {
		t.Fatalf("5 errors in 10000 is 0.05%%: broken %v", c.Broken)
	}
	if c := Compare(base, crafted(t, 10000, 100, 1000, 20), rate); len(c.Broken) != 1 {
		t.Fatalf("20 errors in 10000 is 0.2%%: broken %v", c.Broken)
	}
}

func TestCompareSaysWhenAPercentileIsNoise(t *testing.T) {
	// A change, however small, is what the note qualifies (none for no change).
	c := Compare(crafted(t, 500, 100, 100, 0), crafted(t, 500, 102, 100, 0), nil)
	var out strings.Builder
	c.Write(&out)
	if !strings.Contains(out.String(), "p999 from 500 requests: 0.5 above it") || strings.Contains(out.String(), "p50 from") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func TestCompareSaysWhenTheRESTEnginesDiffer(t *testing.T) {
	base, next := crafted(t, 500, 100, 100, 0), crafted(t, 500, 100, 100, 0)
	base.Client.Engine, next.Client.Engine = "epoll", "goroutines"
	var out strings.Builder
	Compare(base, next, nil).Write(&out)
	if !strings.Contains(out.String(), "note: the REST engines differ (base epoll, new goroutines)") {
		t.Fatalf("table:\n%s", out.String())
	}
	next.Client.Engine = "" // a result from before engines were recorded
	out.Reset()
	Compare(base, next, nil).Write(&out)
	if strings.Contains(out.String(), "engines differ") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func TestParseLimitsRejectsNonsense(t *testing.T) {
	for _, bad := range []string{"p98=+1%", "p99", "p99=+10", "p99=fast", "errors=-1", "rps=+x%"} {
		if _, err := ParseLimits(bad); err == nil {
			t.Errorf("ParseLimits(%q) accepted", bad)
		}
	}
}

func TestMergeOfTwoHalvesEqualsOneRun(t *testing.T) {
	all, a, b := newHistogram(), newHistogram(), newHistogram()
	for i := int64(1); i <= 20000; i++ {
		v := 500 + (i*7919)%90000
		all.RecordValue(v)
		if i%2 == 0 {
			a.RecordValue(v)
		} else {
			b.RecordValue(v)
		}
	}
	ra, rb := &Result{Version: 1, LatencyFrom: "send", Requests: 10000, ThroughputRPS: 100, Errors: map[string]int64{"timeout": 2}},
		&Result{Version: 1, LatencyFrom: "send", Requests: 10000, ThroughputRPS: 150, Errors: map[string]int64{"timeout": 1, "http_503": 4}}
	ra.Histogram, _ = EncodeHistogram(a)
	rb.Histogram, _ = EncodeHistogram(b)
	m, _, err := Merge([]*Result{ra, rb}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHistogram(m.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(all) || m.Latency != StatsOf(all) {
		t.Fatalf("merged histogram differs: %+v vs %+v", m.Latency, StatsOf(all))
	}
	// a ran 100 s, b 66.7 s: together 20000 requests over a's 100 s.
	if m.Requests != 20000 || m.ThroughputRPS != 200 || m.Errors["timeout"] != 3 || m.Errors["http_503"] != 4 {
		t.Fatalf("merged %+v", m)
	}
	rb.LatencyFrom = "intended_send"
	if _, _, err := Merge([]*Result{ra, rb}, []string{"a.json", "b.json"}); err == nil {
		t.Fatal("merged an open-loop and a closed-loop run")
	}
}

func TestCompareFailsEveryLatencyLimitOfARunWithNoSuccess(t *testing.T) {
	// Every request of the new run failed fast (1 ms, say 503s): its
	// latency looks better than the base's, and must still fail.
	base := crafted(t, 1000, 100, 100, 0)
	next := crafted(t, 1000, 1, 100, 1000)
	limits, _ := ParseLimits("p99=+10%,p50=+10%,rps=-5%")
	c := Compare(base, next, limits)
	if strings.Join(c.Broken, ",") != "rps,p50,p99" {
		t.Fatalf("broken %v", c.Broken)
	}
	var out strings.Builder
	c.Write(&out)
	if !strings.Contains(out.String(), "no successful request (1000 requests, 1000 errors)") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func TestMergeKeepsTheSuccessfulRequestsHistogramAndRefusesMixedVersions(t *testing.T) {
	a, b := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 50, 100, 0)
	for _, r := range []*Result{a, b} {
		r.Version, r.HistogramOK, r.LatencyOK = 2, r.Histogram, r.Latency
	}
	m, _, err := Merge([]*Result{a, b}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if m.LatencyOK.Count != 2000 || m.LatencyOK != m.Latency || m.HistogramOK == "" {
		t.Fatalf("merged ok latency %+v, all %+v", m.LatencyOK, m.Latency)
	}
	b.Version = 1
	if _, _, err := Merge([]*Result{a, b}, []string{"a.json", "b.json"}); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("merged a version 1 and a version 2 result: %v", err)
	}
}

func TestMergeRefusesTheSameRunTwiceAndRunsThatDidNotOverlap(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	run := func(start time.Time, maxMs float64) *Result {
		r := crafted(t, 1000, maxMs, 100, 0)
		r.StartedAt, r.Phases.Steady.Start, r.Phases.Steady.End = start, 1, 11
		return r
	}
	a, b := run(at, 100), run(at.Add(2*time.Second), 90)
	if err := CheckMergeable([]*Result{a, b}, []string{"a.json", "b.json"}); err != nil {
		t.Fatalf("two machines' runs at the same time: %v", err)
	}
	if err := CheckMergeable([]*Result{a, a}, []string{"a.json", "a2.json"}); err == nil || !strings.Contains(err.Error(), "same run") {
		t.Fatalf("the same run twice: %v", err)
	}
	later := run(at.Add(28*time.Second), 90)
	if err := CheckMergeable([]*Result{a, b, later}, []string{"a.json", "b.json", "c.json"}); err == nil || !strings.Contains(err.Error(), "c.json") {
		t.Fatalf("a run made 28 s later: %v", err)
	}
}

func TestCompareSaysWhenTheTimeoutsDiffer(t *testing.T) {
	base, next := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 50, 100, 0)
	base.Config, next.Config = map[string]any{"timeout": "5s"}, map[string]any{"timeout": "500ms"}
	var out strings.Builder
	Compare(base, next, nil).Write(&out)
	if !strings.Contains(out.String(), "different --timeout (base 5 s, new 500 ms)") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// withSeconds gives r a warm-up second and n steady seconds whose
// per-second p99 is p99ms(i) (p50 half of it) at rps requests a second.
func withSeconds(r *Result, n int, rps int64, p99ms func(i int) float64) *Result {
	r.Phases = Phases{Warmup: Phase{Start: 0, End: 1, Requests: rps}, Steady: Phase{Start: 1, End: float64(1 + n), Requests: r.Requests}}
	r.Series = nil
	for t := 0; t <= n; t++ {
		p99 := int64(p99ms(t) * 1000)
		r.Series = append(r.Series, Second{Second: t, Requests: rps, P50Us: p99 / 2, P99Us: p99, MaxUs: p99 + 1000})
	}
	// The partial second after the steady phase, as a run records it.
	r.Series = append(r.Series, Second{Second: n + 1, Requests: 3, P50Us: 1000, P99Us: 500000, MaxUs: 500000})
	return r
}

func TestLimitsAreHowFarAMetricMayMoveItsBadWay(t *testing.T) {
	base := crafted(t, 10000, 100, 1000, 0)
	rise := crafted(t, 10000, 100, 1060, 0) // throughput up 6%: better, whatever the limit
	drop := crafted(t, 10000, 100, 940, 0)  // down 6%
	for _, spec := range []string{"rps=5%", "rps=-5%", "rps=50"} {
		limits, err := ParseLimits(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if c := Compare(base, rise, limits); len(c.Broken) != 0 || c.Rows[0].Verdict != VerdictPass {
			t.Errorf("%s: a 6%% rise of rps broke it: %v", spec, c.Broken)
		}
		if c := Compare(base, drop, limits); strings.Join(c.Broken, ",") != "rps" || c.Rows[0].Verdict != VerdictRegressed {
			t.Errorf("%s: a 6%% drop of rps: broken %v", spec, c.Broken)
		}
	}
	slower := crafted(t, 10000, 120, 1000, 0)
	for _, spec := range []string{"p99=10%", "p99=+10%", "p99=5ms"} {
		limits, _ := ParseLimits(spec)
		if c := Compare(base, slower, limits); strings.Join(c.Broken, ",") != "p99" {
			t.Errorf("%s: p99 20%% up: broken %v", spec, c.Broken)
		}
		if c := Compare(slower, base, limits); len(c.Broken) != 0 {
			t.Errorf("%s: p99 down broke it: %v", spec, c.Broken)
		}
	}
	for spec, want := range map[string]string{
		"rps=+5%":   `report.ParseLimits "rps=+5%": rps regresses when it drops; write rps=5% or rps=-5%`,
		"ok_rps=+1": `ok_rps regresses when it drops`,
		"p99=-10%":  `report.ParseLimits "p99=-10%": p99 regresses when it rises; write p99=10%`,
		"p50=-2ms":  `p50 regresses when it rises`,
	} {
		if _, err := ParseLimits(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLimits(%q): %v; want %q", spec, err, want)
		}
	}
	limits, _ := ParseLimits("p99=10%,p50=2ms,rps=5%,ok_rps=20,errors=0.1%")
	var said []string
	for _, l := range limits {
		said = append(said, l.Metric+" "+l.String())
	}
	if got := strings.Join(said, "; "); got != "p99 <= +10%; p50 <= +2ms; rps >= -5%; ok_rps >= -20rps; errors <= 0.1%" {
		t.Fatalf("limits read as %s", got)
	}
}

func TestParseLimitsRefusesAMetricLimitedTwice(t *testing.T) {
	for spec, want := range map[string]string{
		"p99=10%,rps=5%,p99=5%": "report.ParseLimits: p99 is limited twice (p99=10% and p99=5%)",
		"p999=1%,p99.9=2%":      "report.ParseLimits: p999 is limited twice (p999=1% and p99.9=2%)",
		"errors=0, errors=1%":   "report.ParseLimits: errors is limited twice",
	} {
		_, err := ParseLimits(spec)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseLimits(%q): %v; want one line with %q", spec, err, want)
		}
	}
}

func TestCompareCallsAChangeWithinTheRunsOwnVariationNoisy(t *testing.T) {
	limits, _ := ParseLimits("p99=5%,rps=5%")
	// p99 12% up overall (100 -> 112 ms histograms); per second the p99
	// of both runs wanders between 50 and 150 ms.
	wandering := func(i int) float64 { return []float64{50, 150, 70, 140, 60, 130, 90}[i%7] }
	base := withSeconds(crafted(t, 10000, 100, 1000, 0), 10, 1000, wandering)
	next := withSeconds(crafted(t, 10000, 112, 1000, 0), 10, 1000, func(i int) float64 { return wandering(i + 3) })
	c := Compare(base, next, limits)
	row := c.Rows[7]
	if row.Metric != "p99" || row.Verdict != VerdictNoisy || len(c.Broken) != 0 || strings.Join(c.Noisy, ",") != "p99" {
		t.Fatalf("p99 %+v; broken %v noisy %v", row, c.Broken, c.Noisy)
	}
	if !strings.Contains(row.Noisy, "within the runs' own variation") || row.Spread < 20 || row.Spread > 80 {
		t.Fatalf("p99 spread %.1f ms: %s", row.Spread, row.Noisy)
	}
	// The same change from runs whose p99 holds steady is a regression.
	steady := func(i int) float64 { return 99 + float64(i%2) }
	base = withSeconds(crafted(t, 10000, 100, 1000, 0), 10, 1000, steady)
	next = withSeconds(crafted(t, 10000, 112, 1000, 0), 10, 1000, steady)
	c = Compare(base, next, limits)
	if c.Rows[7].Verdict != VerdictRegressed || strings.Join(c.Broken, ",") != "p99" || len(c.Noisy) != 0 {
		t.Fatalf("steady runs: p99 %+v; broken %v", c.Rows[7], c.Broken)
	}
	// The warm-up second and the partial last second (p99 500 ms) are not
	// the run's variation: the steady seconds alone spread by about 0.3 ms.
	if c.Rows[7].Spread > 1 {
		t.Fatalf("steady runs spread %.2f ms: warm-up or partial seconds counted", c.Rows[7].Spread)
	}
	var out strings.Builder
	c.Write(&out)
	if !regexp.MustCompile(`(?m)^p99 .* <= \+5% +REGRESSED$`).MatchString(out.String()) || !strings.Contains(out.String(), "REGRESSION: p99 over the limit") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func TestCompareNotesRunsThatAreNotComparable(t *testing.T) {
	base, next := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 100, 100, 0)
	for _, r := range []*Result{base, next} {
		r.Loop, r.Transport, r.Config = "open", "rest", map[string]any{"rate": "300", "timeout": "10s"}
	}
	var out strings.Builder
	Compare(base, next, nil).Write(&out)
	if strings.Contains(out.String(), "note:") {
		t.Fatalf("runs alike got notes:\n%s", out.String())
	}
	next.Config = map[string]any{"rate": 200.0, "timeout": "10s"}
	next.Transport = "grpc"
	base.Client.MaxFreeSendLagMs, next.Client.MaxFreeSendLagMs = 4.4, 134.7
	base.Profile = &ProfileReport{WindowStartS: 3, WindowEndS: 5}
	out.Reset()
	c := Compare(base, next, nil)
	c.Write(&out)
	for _, want := range []string{
		"note: the offered rates differ (base --rate 300, new --rate 200)",
		"note: the transports differ (base rest, new grpc)",
		"note: the new run's client fell behind its schedule with slots free (up to 134.7 ms; base 4.4 ms, new 134.7 ms)",
		"note: only the base run opened a profile window",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	if len(c.Notes) != 4 {
		t.Fatalf("%d notes: %q", len(c.Notes), c.Notes)
	}
	base.Outside = &Slice{Latency: Stats{Count: 800, P99: 42.5}}
	if notes := comparabilityNotes(base, next); !strings.Contains(strings.Join(notes, "|"), "(outside its window the base run's p99 is 42.50 ms, the other run's p99 99.07 ms)") {
		t.Fatalf("notes %q", notes)
	}
	// 300 written as a number by a newer loadprof is the same rate.
	next.Config["rate"] = 300.0
	if notes := comparabilityNotes(base, next); strings.Contains(strings.Join(notes, "|"), "offered rates") {
		t.Fatalf("rate 300 and \"300\" differ: %q", notes)
	}
}

// FuzzParseLimits: whatever --max holds, ParseLimits refuses it or returns
// one limit a metric, each a finite worsening that reads back the same.
func FuzzParseLimits(f *testing.F) {
	for _, seed := range []string{"p99=10%,p50=2ms,rps=5%,errors=0", "rps=-5%", "p99=+10%", "p99.9=1%,p999=2%", "errors=0.1%", "ok_rps=20", "p50=-1ms", ",", "max=1e308%"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		limits, err := ParseLimits(spec)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a two-line error: %q", err)
			}
			return
		}
		seen := map[string]bool{}
		var again []string
		for _, l := range limits {
			if seen[l.Metric] || l.Value < 0 || math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
				t.Fatalf("%q read as %+v", spec, limits)
			}
			seen[l.Metric] = true
			unit := l.Absolute
			if l.Percent {
				unit = "%"
			} else if unit == "rps" {
				unit = ""
			}
			again = append(again, l.Metric+"="+strconv.FormatFloat(l.Value, 'g', -1, 64)+unit)
		}
		if len(limits) == 0 {
			return
		}
		reread, err := ParseLimits(strings.Join(again, ","))
		if err != nil || !reflect.DeepEqual(reread, limits) {
			t.Fatalf("%q read as %+v, written back as %q, read again as %+v (%v)", spec, limits, again, reread, err)
		}
	})
}

// TestCompareSaysWhichRunIsUnmeasuredOrInterrupted: a base run with no
// successful request (interrupted in its warm-up, say) failed the gate
// with no word of why (review); an interrupted run is named.
func TestCompareSaysWhichRunIsUnmeasuredOrInterrupted(t *testing.T) {
	base, next := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 100, 100, 0)
	base.Requests, base.Errors = 0, map[string]int64{}
	base.Interrupted = true
	var out strings.Builder
	Compare(base, next, nil).Write(&out)
	for _, want := range []string{"note: the base run has no successful request (0 requests, 0 errors)", "note: the base run was interrupted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

// A coordinated run that lacks workers carried less load than asked (or
// the others more): compare says so, naming how many and why.
func TestCompareNotesARunThatLacksWorkers(t *testing.T) {
	base, next := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 100, 100, 0)
	base.Workers = []WorkerReport{{Index: 1, Status: WorkerOK}, {Index: 2, Status: WorkerLate}, {Index: 3, Status: WorkerInterrupted}}
	next.Workers = []WorkerReport{{Index: 1, Status: WorkerOK}, {Index: 2, Status: WorkerLost}, {Index: 3, Status: WorkerNeverJoined}, {Index: 4, Status: WorkerNeverJoined}}
	var out strings.Builder
	Compare(base, next, nil).Write(&out)
	if want := "note: the new run lacks workers (1 lost, 2 never joined)"; !strings.Contains(out.String(), want) {
		t.Errorf("no %q in\n%s", want, out.String())
	}
	if strings.Contains(out.String(), "the base run lacks") {
		t.Errorf("the base run had every worker:\n%s", out.String())
	}
}
