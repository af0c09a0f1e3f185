package report

import (
	"math"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// goodputResult is a steady phase of 10 s with requests, good of them
// meeting slo.
func goodputResult(requests, good int64, slo string) *Result {
	h := hdrhistogram.New(1, 60_000_000, 3)
	h.RecordValue(1000)
	enc, _ := EncodeHistogram(h)
	r := &Result{Version: 3, LatencyFrom: "intended_send", StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Histogram: enc,
		Requests: requests, ThroughputRPS: float64(requests) / 10, SuccessRPS: float64(requests) / 10,
		Phases: Phases{Steady: Phase{Start: 0, End: 10, Requests: requests}}}
	if slo != "" {
		r.Goodput = &Goodput{Requests: good, SLO: slo, Rate: float64(good) / 10}
		if requests > 0 {
			r.Goodput.Share = float64(good) / float64(requests)
		}
	}
	return r
}

// TestMergeAddsTheGoodRequestsOfEveryInput checks that merged goodput
// is the inputs' good requests added, its share of their requests
// together (an input with none good counting its requests), its rate
// over the merged span; inputs under different objectives, or some
// without one, leave it out with a note.
func TestMergeAddsTheGoodRequestsOfEveryInput(t *testing.T) {
	const slo = "ttft_p99<500ms"
	m, notes, err := Merge([]*Result{goodputResult(300, 299, slo), goodputResult(7, 3, slo), goodputResult(50, 0, slo)}, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	g := m.Goodput
	if g == nil {
		t.Fatalf("no merged goodput (notes %v)", notes)
	}
	if g.Requests != 302 || g.SLO != slo || math.Abs(g.Share-302.0/357) > 1e-15 || math.Abs(g.Rate-30.2) > 1e-9 {
		t.Errorf("merged goodput %+v, want 302 of 357 requests, 30.2/s", g)
	}
	for _, c := range []struct {
		inputs []*Result
		note   string
	}{
		{[]*Result{goodputResult(10, 5, slo), goodputResult(10, 5, "ttft_p99<1s")}, "different objectives"},
		{[]*Result{goodputResult(10, 5, slo), goodputResult(10, 5, "")}, "1 of the 2 inputs have none"},
	} {
		m, notes, err := Merge(c.inputs, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if m.Goodput != nil || !strings.Contains(strings.Join(notes, "\n"), c.note) {
			t.Errorf("goodput %+v, notes %v: want none and a note saying %q", m.Goodput, notes, c.note)
		}
	}
}
