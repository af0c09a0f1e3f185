package bench

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// twoMachines runs a REST and a gRPC run against one simulator, the second
// started 1.4 s after the first (their clocks are one second apart on the
// merged one), and returns their results as read back from result.json.
func twoMachines(t *testing.T) (a, b *report.Result) {
	t.Helper()
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: 4 * time.Millisecond, ErrorRate: 0.05}})
	dir := t.TempDir()
	data := writeFile(t, "data.json", body)
	plan := func(rate float64) load.Plan {
		return load.Plan{Rate: rate, WarmupDuration: time.Second, Duration: 3 * time.Second, MaxInflight: 100}
	}
	cfgs := []Config{
		{URL: srv.PredictURL(), DataPath: data, Plan: plan(100), Timeout: 5 * time.Second,
			Settings: map[string]any{"rate": 100.0, "timeout": 5.0}},
		{GRPC: GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()}, DataPath: data, Plan: plan(70), Timeout: 5 * time.Second,
			Settings: map[string]any{"rate": 70.0, "timeout": 5.0}},
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	results := make([]*report.Result, 2)
	paths := []string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")}
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Run(context.Background(), cfg)
		}()
		if i == 0 {
			time.Sleep(1400 * time.Millisecond)
		}
	}
	wg.Wait()
	var out []*report.Result
	for i := range cfgs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		writeResult(t, results[i], paths[i])
		r, err := report.ReadResult(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out[0], out[1]
}

func decoded(t *testing.T, enc string) *hdrhistogram.Histogram {
	t.Helper()
	h, err := report.DecodeHistogram(enc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMergedSeriesEqualsAMergeByHandOfTheInputsHistograms(t *testing.T) {
	a, b := twoMachines(t)
	inputs := []*report.Result{a, b}
	for _, r := range inputs {
		// The per-second histograms hold every measured request of the run,
		// and nothing else, by the seconds of the series: each second its
		// point's requests. A second with steady requests holds them alone
		// (a warm-up request that ends after the steady phase began, as
		// one may on a busy machine, is in the warm-up's figures only), so
		// the seconds hold every steady request and the warm-up's of the
		// seconds before.
		points := map[int]int64{}
		for _, p := range r.Series {
			points[p.Second] = p.Requests
		}
		var n, pointed int64
		for _, p := range r.Series {
			pointed += p.Requests
		}
		for _, sh := range r.SeriesHistograms {
			c := decoded(t, sh.Histogram).TotalCount()
			if c != points[sh.Second] {
				t.Fatalf("%s: t=%d: the histogram holds %d requests, the series point %d", r.Transport, sh.Second, c, points[sh.Second])
			}
			n += c
		}
		steady, all := r.Latency.Count, r.Phases.Warmup.Latency.Count+r.Latency.Count
		if n != pointed || n <= steady || n > all {
			t.Fatalf("%s: the per-second histograms hold %d requests, the series %d; the run measured %d steady and %d in all", r.Transport, n, pointed, steady, all)
		}
		t.Logf("%s: the per-second histograms hold %d requests, the run measured %d steady and %d in all", r.Transport, n, steady, all)
	}
	m, notes, err := report.Merge(inputs, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}

	// The merge by hand: each run's seconds moved by its start's offset
	// from the earliest, rounded; the histograms of a second added up.
	start := a.StartedAt
	if b.StartedAt.Before(start) {
		start = b.StartedAt
	}
	type second struct {
		requests, errors int64
		hist             *hdrhistogram.Histogram
		runs             int
	}
	byHand := map[int]*second{}
	at := func(t int) *second {
		if byHand[t] == nil {
			byHand[t] = &second{hist: load.NewHistogram()}
		}
		return byHand[t]
	}
	for _, r := range inputs {
		shift := int(math.Round(r.StartedAt.Sub(start).Seconds()))
		for _, p := range r.Series {
			s := at(p.Second + shift)
			s.requests += p.Requests
			s.errors += p.Errors
			s.runs++
		}
		for _, sh := range r.SeriesHistograms {
			at(sh.Second + shift).hist.Merge(decoded(t, sh.Histogram))
		}
	}
	if len(m.Series) != len(byHand) {
		t.Fatalf("merged series has %d seconds, by hand %d", len(m.Series), len(byHand))
	}
	merged := map[int]string{}
	for _, sh := range m.SeriesHistograms {
		merged[sh.Second] = sh.Histogram
	}
	shared := 0
	for _, p := range m.Series {
		want := byHand[p.Second]
		if want == nil {
			t.Fatalf("merged second %d is in no input", p.Second)
		}
		if want.runs == 2 {
			shared++
		}
		h := want.hist
		if p.Requests != want.requests || p.Errors != want.errors {
			t.Errorf("t=%d: %d requests %d errors, by hand %d and %d", p.Second, p.Requests, p.Errors, want.requests, want.errors)
		}
		if h.TotalCount() == 0 {
			continue
		}
		if p.P50Us == 0 || p.P50Us != load.ValueAtPercentile(h, 50) || p.P99Us != load.ValueAtPercentile(h, 99) || p.MaxUs != h.Max() {
			t.Errorf("t=%d: p50 %d p99 %d max %d us, by hand %d %d %d", p.Second, p.P50Us, p.P99Us, p.MaxUs,
				load.ValueAtPercentile(h, 50), load.ValueAtPercentile(h, 99), h.Max())
		}
		if enc, ok := merged[p.Second]; !ok || !decoded(t, enc).Equals(h) {
			t.Errorf("t=%d: the merged series histogram differs from the one by hand", p.Second)
		}
	}
	if shared < 3 {
		t.Fatalf("only %d seconds have points of both runs", shared)
	}

	// Phases span the inputs' on the merged clock; the warm-up keeps its
	// latency, merged from both runs' warm-up histograms.
	for _, ph := range []struct {
		name string
		got  report.Phase
		of   func(*report.Result) report.Phase
	}{{"warm-up", m.Phases.Warmup, func(r *report.Result) report.Phase { return r.Phases.Warmup }}, {"steady", m.Phases.Steady, func(r *report.Result) report.Phase { return r.Phases.Steady }}} {
		wantStart, wantEnd := math.Inf(1), math.Inf(-1)
		var requests int64
		for _, r := range inputs {
			off := r.StartedAt.Sub(m.StartedAt).Seconds()
			wantStart, wantEnd = min(wantStart, ph.of(r).Start+off), max(wantEnd, ph.of(r).End+off)
			requests += ph.of(r).Requests
		}
		if math.Abs(ph.got.Start-wantStart) > 1e-9 || math.Abs(ph.got.End-wantEnd) > 1e-9 || ph.got.Requests != requests {
			t.Errorf("%s: %.3f..%.3f s, %d requests; want %.3f..%.3f s, %d", ph.name, ph.got.Start, ph.got.End, ph.got.Requests, wantStart, wantEnd, requests)
		}
	}
	if span := m.Phases.Steady.End - m.Phases.Steady.Start; span < 4 {
		t.Errorf("steady phase of %.3f s: the runs' 3 s phases are 1.4 s apart", span)
	}
	wu := decoded(t, a.Phases.Warmup.Histogram)
	wu.Merge(decoded(t, b.Phases.Warmup.Histogram))
	if got := m.Phases.Warmup.Latency; got != report.StatsOf(wu) || got.Count == 0 {
		t.Errorf("warm-up latency %+v, by hand %+v", got, report.StatsOf(wu))
	}

	// What differs says so; each input keeps its own settings.
	if m.Transport != "mixed" || m.Target != "mixed" || m.Config["rate"] != "mixed" || m.Config["timeout"] != 5.0 {
		t.Errorf("transport %q, target %q, config %v", m.Transport, m.Target, m.Config)
	}
	if len(m.MergedFrom) != 2 || m.MergedFrom[1].Transport != "grpc" || m.MergedFrom[1].Config["rate"] != 70.0 || m.MergedFrom[0].Host == nil {
		t.Errorf("merged_from %+v", m.MergedFrom)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "transport, target") {
		t.Errorf("notes %q", notes)
	}

	// A merge of a merge lists the runs themselves.
	c := *b
	c.StartedAt = c.StartedAt.Add(time.Second)
	again, _, err := report.Merge([]*report.Result{m, &c}, []string{"ab.json", "c.json"})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, in := range again.MergedFrom {
		files = append(files, in.File)
	}
	if strings.Join(files, ",") != "a.json,b.json,c.json" {
		t.Errorf("merged_from of a merge of a merge: %q", files)
	}
}
