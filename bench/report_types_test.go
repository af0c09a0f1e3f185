package bench

import (
	"testing"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
)

// report declares its own copies of what it reads from the recorder
// (report.Second converts from load.Second, which the compiler checks);
// the histogram range and the percentile rank must agree with load's too,
// or the reports would read other percentiles than the run recorded.
func TestReportReadsHistogramsAsTheRecorderWritesThem(t *testing.T) {
	if report.HistogramMinUs != load.HistogramMinUs || report.HistogramMaxUs != load.HistogramMaxUs || report.HistogramDigits != load.HistogramDigits {
		t.Fatalf("report's histogram range %d..%d (%d digits), load's %d..%d (%d digits)", report.HistogramMinUs, report.HistogramMaxUs,
			report.HistogramDigits, load.HistogramMinUs, load.HistogramMaxUs, load.HistogramDigits)
	}
	// 1006 values, one a millisecond apart: p90 is the 906th (rank
	// 905.4 rounded up), where hdrhistogram-go's own rounding says the
	// 905th.
	h := load.NewHistogram()
	for i := int64(1); i <= 1006; i++ {
		_ = h.RecordValue(i * 1000)
	}
	s := report.StatsOf(h)
	for _, c := range []struct {
		p   float64
		got float64
	}{{50, s.P50}, {90, s.P90}, {95, s.P95}, {99, s.P99}, {99.9, s.P999}} {
		if want := float64(load.ValueAtPercentile(h, c.p)) / 1000; c.got != want {
			t.Errorf("p%g: report reads %.3f ms, load %.3f ms", c.p, c.got, want)
		}
	}
}
