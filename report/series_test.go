package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkSecondHistogramSize measures what series_histograms costs in
// result.json: the encoded size of one second's histogram (reported as
// bytes/second and MB/hour of run) at several request rates, latencies
// log-normal around 5 ms (sigma 0.5), and the time to encode one.
func BenchmarkSecondHistogramSize(b *testing.B) {
	for _, rate := range []int{100, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(rate)))
			h := newHistogram()
			for range rate {
				_ = h.RecordValue(int64(5000 * math.Exp(0.5*rng.NormFloat64())))
			}
			var size int
			for b.Loop() {
				enc, err := EncodeHistogram(h)
				if err != nil {
					b.Fatal(err)
				}
				size = len(enc)
			}
			// The JSON around it: {"t": 12345, "histogram": "..."} indented.
			perSecond := float64(size + len(`      "t": 12345,      "histogram": ""    },    {`) + 8)
			b.ReportMetric(perSecond, "bytes/second")
			b.ReportMetric(perSecond*3600/1e6, "MB/hour")
		})
	}
}
