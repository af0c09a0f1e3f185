package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func TestRatesOfTheFinalPartialSecondAreNormalisedOrLeftOut(t *testing.T) {
	r := goldenResult(t) // the last second, 4, ends at 4.5 s with 126 requests
	c, note, err := chartOf("r0", r)
	if err != nil {
		t.Fatal(err)
	}
	last := len(c.Time) - 1
	if len(c.Time) != len(r.Series) || c.Time[last] != 4.25 || *c.OK[last] != 252 || *c.Sent[last] != 0 || *c.Inflight[last] != 1.4 {
		t.Fatalf("final half second at x %v: %v ok/s, %v sent/s, %v in flight; want 252 ok/s at 4.25", c.Time[last], *c.OK[last], *c.Sent[last], *c.Inflight[last])
	}
	if *c.OK[0] != 250 || c.Time[0] != 0.5 || note == "" {
		t.Fatalf("a whole second: %v ok/s at x %v; note %q", *c.OK[0], c.Time[0], note)
	}
	// 50 ms are too short to give a rate: the point is left out, and said.
	r.Phases.Steady.End = 4.05
	c, note, err = chartOf("r0", r)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Time) != len(r.Series)-1 || note == "" {
		t.Fatalf("%d points for %d seconds, note %q", len(c.Time), len(r.Series), note)
	}
}

func TestPercentileCurvesStopAtTheirCount(t *testing.T) {
	big, small := newHistogram(), newHistogram()
	for i := int64(1); i <= 5000; i++ {
		big.RecordValue(i)
		if i <= 40 {
			small.RecordValue(i * 100)
		}
	}
	c := percentileCurves([]string{"all", "window"}, []*hdrhistogram.Histogram{big, small})
	if top := c.X[len(c.X)-1]; top != 5000 {
		t.Fatalf("axis ends at %v, want 5000 (1/(1-p) of the last percentile 5000 requests resolve)", top)
	}
	for i, x := range c.X {
		if (x <= 40) != (c.Curves[1].Ms[i] != nil) {
			t.Fatalf("the 40-request curve at x %v: %v", x, c.Curves[1].Ms[i])
		}
		if c.Curves[0].Ms[i] == nil {
			t.Fatalf("the 5000-request curve has a gap at x %v", x)
		}
	}
	// It ends exactly at its own count: percentile 97.5%, the 39th of 40.
	for i, x := range c.X {
		if v := c.Curves[1].Ms[i]; x == 40 && (v == nil || math.Abs(*v-3.9) > 0.01) {
			t.Fatalf("the 40-request curve ends at %v ms, want its 39th value, 3.9 ms", v)
		}
	}
	if n := len(c.X); n > 4*pointsPerDecade+2 {
		t.Fatalf("%d points for 3.7 decades", n)
	}
	if math.Abs(c.X[pointsPerDecade]-10) > 1e-9 {
		t.Fatalf("the 90%% point is at %v", c.X[pointsPerDecade])
	}
}

func TestDistributionKeepsEveryRequest(t *testing.T) {
	h := newHistogram()
	for i := int64(1); i <= 3000; i++ {
		h.RecordValue(500 + i*i/10)
	}
	d := distributionOf(h)
	var n float64
	for _, c := range d.Count {
		n += c
	}
	if n != 3000 || d.FromMs[0] > 0.5011 || d.FromMs[len(d.FromMs)-1] < float64(h.Max())/1000 {
		t.Fatalf("%v requests in bins from %v to %v ms", n, d.FromMs[0], d.FromMs[len(d.FromMs)-1])
	}
}

func TestSweepHTMLTemplateGolden(t *testing.T) {
	var steps []StepResult
	for i, level := range []float64{100, 200, 300} {
		r := goldenResult(t)
		r.ThroughputRPS = level
		r.Config = map[string]any{"rate": level, "duration": "5s", "header": []string{}}
		r.Latency.P99 = 10 * float64(i+1)
		steps = append(steps, StepResult{Level: level, Pass: i < 2, Attempts: 1 + i, Result: r})
	}
	steps[1].Bisection, steps[2].Unstable, steps[2].Broken = true, "throughput 300 vs 200 req/s between halves", []string{"p99 30.0ms >= 25ms"}
	top := 200.0
	sw := &SweepResult{Version: 2, Kind: "sweep", Loop: "open", SLO: "p99<25ms,errors<1%", Stopped: "step 3 (300) broke the SLO",
		Config: map[string]any{"duration": "5s", "rate": "100:300:100"}, Steps: steps, MaxPassing: &top}
	var buf bytes.Buffer
	if err := writeSweepHTML(&buf, sw, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "sweep.golden.html")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("the sweep report differs from %s (after checking the change: go test ./report -run Golden -args -update)", golden)
	}
}

// TestARunShorterThanAPartialSecondHasAnEmptyTimeAxis: a run that ended
// before its one second could give a rate has no point, and its time axis
// is an empty list on the page, not null (the page's script reads its
// length).
func TestARunShorterThanAPartialSecondHasAnEmptyTimeAxis(t *testing.T) {
	r := goldenResult(t)
	r.Series = r.Series[:1]
	r.Phases.Warmup = Phase{}
	r.Phases.Steady.Start, r.Phases.Steady.End = 0, 0.1
	c, note, err := chartOf("r0", r)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"time":[]`)) || note == "" {
		t.Fatalf("time axis of a 0.1 s run: %s; note %q", raw[:min(len(raw), 200)], note)
	}
}
