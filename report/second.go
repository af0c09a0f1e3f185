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

	// TTFTP99Us is an OpenAI-compatible target's p99 time to first token
	// over the streams that ended in the second (those of the steady
	// phase once it has any, as for the latency); 0 for other targets,
	// seconds without a completed stream, and merges.
	TTFTP99Us int64 `json:"ttft_p99_us,omitempty"`
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

// The final second of a run is usually partial: the run ended inside it.
// Its counts divided by a whole second would plot as a drop of every rate
// at the end; divided by the part that was run they are the rate of that
// part. A final second within wholeSecondSlack of whole counts as whole (an
// open loop ends a little before its last second does), and one shorter
// than minPartialSecond is left out: a few milliseconds of completions say
// nothing about a rate.
const (
	wholeSecondSlack = 0.05
	minPartialSecond = 0.2
)

// secondLength is how much of second t of r's series the run lasted, to
// divide the second's counts by: 1 for every second but the final partial
// one, that one's real length, and 0 when it is too short to give a rate
// (not plotted). Both the run's page and the compare page ask it.
//
// A merge shifted each input's seconds by its start rounded to a whole
// second, so its seconds are its inputs': second t lasted as long as the
// longest of the inputs' seconds that landed on it, and not at all in a
// gap between inputs (a --force merge of runs made apart).
func secondLength(r *Result, t int) float64 {
	if spans := mergedSpans(r); spans != nil {
		length := 0.0
		for _, in := range spans {
			if local := t - in.shift; local >= 0 {
				length = math.Max(length, lengthOfSecond(in.end, local))
			}
		}
		return length
	}
	return lengthOfSecond(runEnd(r), t)
}

// lengthOfSecond is how much of second t a run that ended at end lasted.
func lengthOfSecond(end float64, t int) float64 {
	switch {
	case end <= 0 || end >= float64(t+1)-wholeSecondSlack:
		return 1 // whole, nearly whole, or no end known
	case end <= float64(t):
		return 0 // after the run ended: nothing to divide by
	}
	if length := end - float64(t); length >= minPartialSecond-1e-9 {
		return length
	}
	return 0
}

type mergedSpan struct {
	shift int     // whole seconds its series was moved by
	end   float64 // its end on its own clock
}

// mergedSpans are where a merge's inputs lie on its series, or nil when r
// is not a merge or a merge made before the inputs' spans were kept.
func mergedSpans(r *Result) []mergedSpan {
	if len(r.MergedFrom) == 0 {
		return nil
	}
	spans := make([]mergedSpan, 0, len(r.MergedFrom))
	for _, in := range r.MergedFrom {
		if in.Steady == nil {
			return nil
		}
		end := in.Steady.End
		if in.Warmup != nil {
			end = math.Max(end, in.Warmup.End)
		}
		spans = append(spans, mergedSpan{shift: mergeShift(in.StartedAt.Sub(r.StartedAt).Seconds()), end: end})
	}
	return spans
}

// runEnd is when the run's last request finished, in seconds since it
// started.
func runEnd(r *Result) float64 {
	return math.Max(r.Phases.Steady.End, r.Phases.Warmup.End)
}
