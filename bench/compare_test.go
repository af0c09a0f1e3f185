package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
)

// crafted returns a result whose histogram holds n requests spread evenly
// between 1 ms and maxMs, with the given throughput and errors.
func crafted(t *testing.T, n int, maxMs float64, rps float64, errors int64) *Result {
	t.Helper()
	h := load.NewHistogram()
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
	c := Compare(crafted(t, 500, 100, 100, 0), crafted(t, 500, 100, 100, 0), nil)
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
	all, a, b := load.NewHistogram(), load.NewHistogram(), load.NewHistogram()
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
	if m.Requests != 20000 || m.ThroughputRPS != 250 || m.Errors["timeout"] != 3 || m.Errors["http_503"] != 4 {
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
	if !strings.Contains(out.String(), "different --timeout (base 5s, new 500ms)") {
		t.Fatalf("table:\n%s", out.String())
	}
}
