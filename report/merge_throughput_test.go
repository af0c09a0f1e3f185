package report

import (
	"math"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// A run stopped early (Ctrl-C on one of the machines) adds its requests,
// not its pace over the whole span: the merged throughput is the
// requests over the merged steady span.
func TestMergedThroughputIsRequestsOverTheMergedSpan(t *testing.T) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	h.RecordValue(1000)
	enc, _ := EncodeHistogram(h)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	whole := &Result{Version: 3, LatencyFrom: "intended_send", StartedAt: start, Histogram: enc,
		Requests: 1200, ThroughputRPS: 100, SuccessRPS: 100,
		Phases: Phases{Steady: Phase{Start: 1, End: 13, Requests: 1200}}}
	stopped := &Result{Version: 3, LatencyFrom: "intended_send", StartedAt: start, Histogram: enc,
		Requests: 93, ThroughputRPS: 50, SuccessRPS: 40, Interrupted: true,
		Phases: Phases{Steady: Phase{Start: 1, End: 2.86, Requests: 93}}}
	m, _, err := Merge([]*Result{whole, stopped}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1293.0 / 12; math.Abs(m.ThroughputRPS-want) > 0.01 {
		t.Errorf("merged throughput %.2f req/s, want %.2f (1293 requests over 12 s)", m.ThroughputRPS, want)
	}
	if want := (1200 + 93*40.0/50) / 12; math.Abs(m.SuccessRPS-want) > 0.01 {
		t.Errorf("merged success rate %.2f ok/s, want %.2f", m.SuccessRPS, want)
	}
}
