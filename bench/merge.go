package bench

import (
	"errors"
	"fmt"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/load"
)

// CheckMergeable reports why results should not be merged: the same run
// given twice (its requests would count double), or runs whose steady
// phases do not all overlap in time (merge is for runs made at the same
// time from several machines; adding the throughputs of runs made one
// after the other means nothing). sources name the results in messages.
func CheckMergeable(results []*Result, sources []string) error {
	for i := range results {
		for j := 0; j < i; j++ {
			a, b := results[j], results[i]
			if a.Histogram == b.Histogram && a.StartedAt.Equal(b.StartedAt) && a.Requests == b.Requests {
				return fmt.Errorf("%s and %s are the same run: its requests would count twice", sources[j], sources[i])
			}
		}
	}
	var latest, earliest int
	for i, r := range results {
		if r.steadyStart().After(results[latest].steadyStart()) {
			latest = i
		}
		if r.steadyEnd().Before(results[earliest].steadyEnd()) {
			earliest = i
		}
	}
	if !results[latest].steadyStart().Before(results[earliest].steadyEnd()) {
		return fmt.Errorf("the steady phase of %s (from %s) starts after that of %s ended (%s): merge adds up runs made at the same time from several machines",
			sources[latest], results[latest].steadyStart().Format(time.RFC3339), sources[earliest], results[earliest].steadyEnd().Format(time.RFC3339))
	}
	return nil
}

func (r *Result) steadyStart() time.Time {
	return r.StartedAt.Add(time.Duration(r.Phases.Steady.Start * float64(time.Second)))
}

func (r *Result) steadyEnd() time.Time {
	return r.StartedAt.Add(time.Duration(r.Phases.Steady.End * float64(time.Second)))
}

// Merge combines results of runs made at the same time from several
// machines against one target: histograms and counts are merged exactly,
// throughputs add up. Per-second points are aligned on wall-clock seconds
// and keep their counts (per-second percentiles cannot be merged from
// percentiles, so they are left out). Warm-up latency is not kept in
// results as a histogram, so the merged warm-up has counts only.
func Merge(results []*Result, sources []string) (*Result, error) {
	if len(results) < 2 {
		return nil, errors.New("merge needs two results or more")
	}
	first := results[0]
	out := &Result{
		Version: ResultVersion, Tool: "loadprof " + Version,
		Config:    map[string]any{"merged_from": sources},
		StartedAt: first.StartedAt, Target: first.Target, Transport: first.Transport,
		Loop: first.Loop, LatencyFrom: first.LatencyFrom,
		Errors: map[string]int64{}, ErrorSamples: map[string]string{},
		Phases: Phases{Warmup: Phase{Errors: map[string]int64{}}, Steady: Phase{Errors: map[string]int64{}}},
	}
	var hist, histOK *hdrhistogram.Histogram
	var window, outside *sliceAcc
	series := map[int64]*load.Second{}
	for i, r := range results {
		src := sources[i]
		if r.LatencyFrom != first.LatencyFrom {
			return nil, fmt.Errorf("%s measures latency from %s, %s from %s: merging them means nothing", src, r.LatencyFrom, sources[0], first.LatencyFrom)
		}
		if r.Version != first.Version {
			return nil, fmt.Errorf("%s is a version %d result, %s version %d: their latencies count different requests (version 2 counts failures at the time they failed), so merging them means nothing", src, r.Version, sources[0], first.Version)
		}
		if r.Target != out.Target {
			out.Target = "several targets"
		}
		if i == 0 {
			out.Client.Engine = r.Client.Engine
		} else if r.Client.Engine != out.Client.Engine {
			out.Client.Engine = "mixed"
		}
		if r.StartedAt.Before(out.StartedAt) {
			out.StartedAt = r.StartedAt
		}
		h, err := DecodeHistogram(r.Histogram)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if i == 0 {
			hist = h
		} else if dropped := hist.Merge(h); dropped > 0 {
			return nil, fmt.Errorf("%s: %d values outside the histogram's range", src, dropped)
		}
		if histOK, err = mergeHistogram(histOK, r.HistogramOK, i == 0, src); err != nil {
			return nil, err
		}
		out.Requests += r.Requests
		out.ThroughputRPS += r.ThroughputRPS
		out.SuccessRPS += r.SuccessRPS
		out.Interrupted = out.Interrupted || r.Interrupted
		out.Unfinished += r.Unfinished
		addCounts(out.Errors, r.Errors)
		for k, v := range r.ErrorSamples {
			if _, ok := out.ErrorSamples[k]; !ok {
				out.ErrorSamples[k] = v
			}
		}
		out.Phases.Warmup.Requests += r.Phases.Warmup.Requests
		addCounts(out.Phases.Warmup.Errors, r.Phases.Warmup.Errors)
		out.Phases.Steady.Requests += r.Phases.Steady.Requests
		addCounts(out.Phases.Steady.Errors, r.Phases.Steady.Errors)
		out.Client.PeakInflight += r.Client.PeakInflight
		out.Client.Saturated += r.Client.Saturated
		out.Client.NotSent += r.Client.NotSent
		out.Client.Resent += r.Client.Resent
		out.Client.MaxFreeSendLagMs = max(out.Client.MaxFreeSendLagMs, r.Client.MaxFreeSendLagMs)
		out.Client.LateSamples += r.Client.LateSamples
		if r.Client.MaxSendLagMs > out.Client.MaxSendLagMs {
			out.Client.MaxSendLagMs = r.Client.MaxSendLagMs
		}
		if window, err = mergeSlice(window, r.Window, src); err != nil {
			return nil, err
		}
		if outside, err = mergeSlice(outside, r.Outside, src); err != nil {
			return nil, err
		}
		for _, s := range r.Series {
			at := r.StartedAt.Add(time.Duration(s.Second) * time.Second).Unix()
			p := series[at]
			if p == nil {
				p = &load.Second{}
				series[at] = p
			}
			p.Requests += s.Requests
			p.Errors += s.Errors
			if s.MaxUs > p.MaxUs {
				p.MaxUs = s.MaxUs
			}
		}
	}
	out.Latency = StatsOf(hist)
	out.Phases.Steady.Latency = out.Latency
	var err error
	if out.Histogram, err = EncodeHistogram(hist); err != nil {
		return nil, err
	}
	if histOK != nil {
		out.LatencyOK = StatsOf(histOK)
		if out.HistogramOK, err = EncodeHistogram(histOK); err != nil {
			return nil, err
		}
	}
	if out.Window, err = window.result(); err != nil {
		return nil, err
	}
	if out.Outside, err = outside.result(); err != nil {
		return nil, err
	}
	start := out.StartedAt.Unix()
	for at, p := range series {
		p.Second = int(at - start)
		out.Series = append(out.Series, *p)
	}
	sortSeries(out.Series)
	return out, nil
}

func addCounts(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

// sliceAcc adds up window or outside slices.
type sliceAcc struct {
	requests int64
	errors   map[string]int64
	hist     *hdrhistogram.Histogram
	histOK   *hdrhistogram.Histogram
}

func mergeSlice(acc *sliceAcc, s *Slice, src string) (*sliceAcc, error) {
	if s == nil {
		return acc, nil
	}
	h, err := DecodeHistogram(s.Histogram)
	if err != nil {
		return nil, fmt.Errorf("%s: window/outside histogram: %w", src, err)
	}
	first := acc == nil
	if first {
		acc = &sliceAcc{errors: map[string]int64{}, hist: h}
	} else {
		acc.hist.Merge(h)
	}
	if acc.histOK, err = mergeHistogram(acc.histOK, s.HistogramOK, first, src); err != nil {
		return nil, err
	}
	acc.requests += s.Requests
	addCounts(acc.errors, s.Errors)
	return acc, nil
}

func (a *sliceAcc) result() (*Slice, error) {
	if a == nil {
		return nil, nil
	}
	enc, err := EncodeHistogram(a.hist)
	if err != nil {
		return nil, err
	}
	out := &Slice{Requests: a.requests, Errors: a.errors, Latency: StatsOf(a.hist), Histogram: enc}
	if a.histOK != nil {
		out.LatencyOK = StatsOf(a.histOK)
		if out.HistogramOK, err = EncodeHistogram(a.histOK); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mergeHistogram adds the encoded histogram enc of one result to acc. A
// histogram that some results lack (written by an older loadprof) is left
// out of the merge altogether: nil from then on.
func mergeHistogram(acc *hdrhistogram.Histogram, enc string, first bool, src string) (*hdrhistogram.Histogram, error) {
	if enc == "" || (acc == nil && !first) {
		return nil, nil
	}
	h, err := DecodeHistogram(enc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if acc == nil {
		return h, nil
	}
	if dropped := acc.Merge(h); dropped > 0 {
		return nil, fmt.Errorf("%s: %d values outside the histogram's range", src, dropped)
	}
	return acc, nil
}

func sortSeries(s []load.Second) {
	sort.Slice(s, func(i, j int) bool { return s[i].Second < s[j].Second })
}
