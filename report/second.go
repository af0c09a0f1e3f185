package report

import (
	"math"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Second is one point of the per-second series, by completion time. It is
// Second as result.json carries it, declared here so that reading
// and writing results needs no transport: bench converts one into the
// other (Second(p)), which stops compiling if the two ever differ.
type Second struct {
	Second   int   `json:"t"` // seconds since the run started
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	P50Us    int64 `json:"p50_us"`
	P99Us    int64 `json:"p99_us"`
	MaxUs    int64 `json:"max_us"`

	// The load's shape, for the report's charts (see Second).
	P90Us         int64   `json:"p90_us"`
	Sent          int64   `json:"sent"`     // requests whose start (intended send time in an open loop) fell in this second
	Inflight      float64 `json:"inflight"` // mean requests outstanding over the second
	BytesSent     int64   `json:"bytes_sent"`
	BytesReceived int64   `json:"bytes_received"`
}

// The histogram range of load's recorder (load.HistogramMinUs and so on):
// histograms made here merge into the recorded ones without loss. A test
// in bench checks that the two agree.
const (
	HistogramMinUs  = 1
	HistogramMaxUs  = 3_600_000_000
	HistogramDigits = 3
)

// newHistogram returns an empty latency histogram with loadprof's range.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistogramMinUs, HistogramMaxUs, HistogramDigits)
}

// valueAtPercentile is valueAtPercentile (the rank of HdrHistogram's
// Java and JavaScript implementations, which hdrhistogram-go rounds
// differently), so that a report reads the percentiles the run recorded.
func valueAtPercentile(h *hdrhistogram.Histogram, p float64) int64 {
	n := h.TotalCount()
	if n == 0 {
		return 0
	}
	p = math.Min(math.Max(math.Nextafter(p, math.Inf(-1)), 0), 100)
	rank := math.Max(math.Ceil(p/100*float64(n)), 1)
	return h.ValueAtQuantile(100 * rank / float64(n))
}
