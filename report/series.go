package report

import (
	"fmt"
	"sort"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// SecondHistogram is the latency histogram of one point of the per-second
// series (the same requests the point's p50/p99/max come from: every
// request that reached the server and finished in that second, warm-up
// included), in the encoding of Result.Histogram. Seconds in which no
// latency was recorded have none. They are what lets `merge` compute the
// percentiles of a second exactly from several runs.
type SecondHistogram struct {
	Second    int    `json:"t"`
	Histogram string `json:"histogram"`
}

// mergedSecond gathers the points of several runs that fall on one second
// of the merged series.
type mergedSecond struct {
	point Second
	hist  *hdrhistogram.Histogram
	// parts counts the runs with a point here; unknown says one of them
	// recorded latency but kept no histogram of it.
	parts   int
	unknown bool
}

// addPoint adds one run's point and its histogram (nil when the run kept
// none, or recorded no latency that second) to m. Counts add up; the
// percentiles are recomputed from the merged histogram in finish. A point
// with a max recorded some latency: without its histogram (a version 2
// result, or a merge of one) the second's percentiles are unknown.
func (m *mergedSecond) addPoint(p Second, h *hdrhistogram.Histogram) error {
	m.parts++
	m.point.Requests += p.Requests
	m.point.Errors += p.Errors
	m.point.MaxUs = max(m.point.MaxUs, p.MaxUs)
	// Counts add up; the runs' requests in flight too (side by side).
	m.point.Sent += p.Sent
	m.point.Inflight += p.Inflight
	m.point.BytesSent += p.BytesSent
	m.point.BytesReceived += p.BytesReceived
	if h == nil && p.MaxUs > 0 {
		m.unknown = true
		if m.parts == 1 {
			// Alone so far: its own percentiles are the merged ones
			// unless another run shares the second.
			m.point.P50Us, m.point.P90Us, m.point.P99Us = p.P50Us, p.P90Us, p.P99Us
		}
	}
	if h == nil {
		return nil
	}
	if m.hist == nil {
		m.hist = newHistogram()
	}
	if dropped := m.hist.Merge(h); dropped > 0 {
		return fmt.Errorf("%d values outside the histogram's range", dropped)
	}
	return nil
}

// finish sets the point's percentiles from the merged histogram, and says
// whether they are exact. A second shared with a run that kept no
// histograms gets no percentiles (zero): a percentile of percentiles would
// be a guess.
func (m *mergedSecond) finish() (exact bool) {
	switch {
	case !m.unknown:
		if m.hist != nil && m.hist.TotalCount() > 0 {
			m.point.P50Us = valueAtPercentile(m.hist, 50)
			m.point.P90Us = valueAtPercentile(m.hist, 90)
			m.point.P99Us = valueAtPercentile(m.hist, 99)
			m.point.MaxUs = m.hist.Max()
		}
		return true
	case m.parts == 1 && m.hist == nil:
		return true // one run alone: its own figures
	}
	m.point.P50Us, m.point.P90Us, m.point.P99Us = 0, 0, 0
	return false
}

// mergeSeries merges the per-second series of results, each shifted by
// shift[i] seconds onto the merged clock. It returns the merged points, the
// histograms of those whose every part kept one, and how many seconds got
// no percentiles for want of histograms.
func mergeSeries(results []*Result, shift []int, sources []string) ([]Second, []SecondHistogram, int, error) {
	bySecond := map[int]*mergedSecond{}
	for i, r := range results {
		hists := map[int]string{}
		for _, sh := range r.SeriesHistograms {
			hists[sh.Second] = sh.Histogram
		}
		for _, p := range r.Series {
			t := p.Second + shift[i]
			m := bySecond[t]
			if m == nil {
				m = &mergedSecond{}
				bySecond[t] = m
			}
			var h *hdrhistogram.Histogram
			if enc, ok := hists[p.Second]; ok {
				var err error
				if h, err = DecodeHistogram(enc); err != nil {
					return nil, nil, 0, fmt.Errorf("%s: series_histograms t=%d: %w", sources[i], p.Second, err)
				}
			}
			if err := m.addPoint(p, h); err != nil {
				return nil, nil, 0, fmt.Errorf("%s: series_histograms t=%d: %w", sources[i], p.Second, err)
			}
		}
	}
	seconds := make([]int, 0, len(bySecond))
	for t := range bySecond {
		seconds = append(seconds, t)
	}
	sort.Ints(seconds)
	var series []Second
	var hists []SecondHistogram
	inexact := 0
	for _, t := range seconds {
		m := bySecond[t]
		m.point.Second = t
		if !m.finish() {
			inexact++
		}
		series = append(series, m.point)
		if !m.unknown && m.hist != nil && m.hist.TotalCount() > 0 {
			enc, err := EncodeHistogram(m.hist)
			if err != nil {
				return nil, nil, 0, err
			}
			hists = append(hists, SecondHistogram{Second: t, Histogram: enc})
		}
	}
	return series, hists, inexact, nil
}
