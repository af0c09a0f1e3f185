package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
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

// mergedSteadySpan is the merged steady span in seconds, at least each
// input's own (its requests over its throughput), as mergedThroughput
// divides by.
func mergedSteadySpan(results []*Result, steady Phase) float64 {
	span := steady.End - steady.Start
	for _, r := range results {
		if r.ThroughputRPS > 0 {
			span = max(span, float64(r.Requests)/r.ThroughputRPS)
		}
	}
	return span
}

func (r *Result) steadyStart() time.Time {
	return r.StartedAt.Add(time.Duration(r.Phases.Steady.Start * float64(time.Second)))
}

func (r *Result) steadyEnd() time.Time {
	return r.StartedAt.Add(time.Duration(r.Phases.Steady.End * float64(time.Second)))
}

// Merge combines results of runs made at the same time from several
// machines against one target: histograms and counts are merged exactly,
// the throughput is the requests over the merged steady span. The merged
// clock starts at the earliest start; each run's per-second points move
// onto it by its start's offset rounded to a whole second, and a merged second's percentiles come from the merged
// histograms of the points that fall on it (series_histograms): exact for
// version 3 results. Phases span from the earliest start to the latest end
// of the inputs'. A field on which the inputs differ (transport, target,
// engine, a config value) says "mixed"; merged_from keeps every input's
// own settings. The notes say what could not be merged exactly.
func Merge(results []*Result, sources []string) (*Result, []string, error) {
	if len(results) < 2 {
		return nil, nil, errors.New("merge needs two results or more")
	}
	first := results[0]
	out := &Result{
		Version: ResultVersion, Tool: "loadprof " + Version,
		StartedAt: first.StartedAt, Target: first.Target, Transport: first.Transport,
		Loop: first.Loop, LatencyFrom: first.LatencyFrom,
		Errors: map[string]int64{}, ErrorSamples: map[string]string{},
		Phases: Phases{Warmup: Phase{Errors: map[string]int64{}}, Steady: Phase{Errors: map[string]int64{}}},
		Units:  CurrentUnits, Build: CurrentBuild(),
	}
	var notes []string
	for i, r := range results {
		src := sources[i]
		if r.LatencyFrom != first.LatencyFrom {
			return nil, nil, fmt.Errorf("%s measures latency from %s, %s from %s: merging them means nothing", src, r.LatencyFrom, sources[0], first.LatencyFrom)
		}
		if (r.Version < 2) != (first.Version < 2) {
			return nil, nil, fmt.Errorf("%s is a version %d result, %s version %d: their latencies count different requests (version 2 counts failures at the time they failed), so merging them means nothing", src, r.Version, sources[0], first.Version)
		}
		if r.StartedAt.Before(out.StartedAt) {
			out.StartedAt = r.StartedAt
		}
		if len(r.MergedFrom) > 0 {
			out.MergedFrom = append(out.MergedFrom, r.MergedFrom...) // a merge of merges lists the runs
		} else {
			out.MergedFrom = append(out.MergedFrom, mergedInput(r, src))
		}
	}
	out.Target = sameOrMixed(results, func(r *Result) string { return r.Target })
	out.Transport = sameOrMixed(results, func(r *Result) string { return r.Transport })
	out.Protocol = sameOrMixed(results, ProtocolOf)
	out.Client.Engine = sameOrMixed(results, func(r *Result) string { return r.Client.Engine }) // "" for gRPC
	if out.Client.Engine == mixed {
		out.Client.Engine = sameOrMixed(restOnly(results), func(r *Result) string { return r.Client.Engine })
	}
	out.Config = mergeConfig(results)

	var hist, histOK *hdrhistogram.Histogram
	var window, outside *sliceAcc
	anyWindow := false
	for _, r := range results {
		anyWindow = anyWindow || r.Window != nil
	}
	shift := make([]int, len(results))
	var finished time.Time
	for i, r := range results {
		src := sources[i]
		offset := r.StartedAt.Sub(out.StartedAt).Seconds() // the run's clock on the merged one
		shift[i] = mergeShift(offset)
		h, err := DecodeHistogram(r.Histogram)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src, err)
		}
		if i == 0 {
			hist = h
		} else if dropped := hist.Merge(h); dropped > 0 {
			return nil, nil, fmt.Errorf("%s: %d values outside the histogram's range", src, dropped)
		}
		if histOK, err = mergeHistogram(histOK, r.HistogramOK, i == 0, src); err != nil {
			return nil, nil, err
		}
		out.Requests += r.Requests
		out.Interrupted = out.Interrupted || r.Interrupted
		out.Unfinished += r.Unfinished
		addCounts(out.Errors, r.Errors)
		for k, v := range r.ErrorSamples {
			if _, ok := out.ErrorSamples[k]; !ok {
				out.ErrorSamples[k] = v
			}
		}
		mergePhaseSpan(&out.Phases.Warmup, r.Phases.Warmup, offset)
		mergePhaseSpan(&out.Phases.Steady, r.Phases.Steady, offset)
		out.Client.PeakInflight += r.Client.PeakInflight
		out.Client.Saturated += r.Client.Saturated
		out.Client.NotSent += r.Client.NotSent
		out.Client.Resent += r.Client.Resent
		out.Client.MaxFreeSendLagMs = max(out.Client.MaxFreeSendLagMs, r.Client.MaxFreeSendLagMs)
		out.Client.LateSamples += r.Client.LateSamples
		out.Client.MaxSendLagMs = max(out.Client.MaxSendLagMs, r.Client.MaxSendLagMs)
		if anyWindow {
			in, rest := r.Window, r.Outside
			if in == nil {
				rest = r.wholeSlice() // no window: every steady request was outside it
			}
			if window, err = mergeSlice(window, in, src); err != nil {
				return nil, nil, err
			}
			if outside, err = mergeSlice(outside, rest, src); err != nil {
				return nil, nil, err
			}
		}
		if !r.FinishedAt.IsZero() && r.FinishedAt.After(finished) {
			finished = r.FinishedAt
		}
	}
	out.FinishedAt = finished
	out.ThroughputRPS, out.SuccessRPS = mergedThroughput(results, out.Phases.Steady)
	llmNotes, err := mergeLLM(out, results, sources, mergedSteadySpan(results, out.Phases.Steady))
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, llmNotes...)
	if note := mergeGoodput(out, results, mergedSteadySpan(results, out.Phases.Steady)); note != "" {
		notes = append(notes, note)
	}
	warmup, exact, err := mergeWarmupLatency(results, sources)
	if err != nil {
		return nil, nil, err
	}
	out.Phases.Warmup.Latency, out.Phases.Warmup.Histogram = warmup.stats, warmup.enc
	if !exact {
		notes = append(notes, "the warm-up's percentiles are left out: a version 2 result keeps no warm-up histogram (its count, min, mean, stddev and max are merged)")
	}
	out.Latency = StatsOf(hist)
	out.Phases.Steady.Latency = out.Latency
	if out.Histogram, err = EncodeHistogram(hist); err != nil {
		return nil, nil, err
	}
	if histOK != nil {
		out.LatencyOK = StatsOf(histOK)
		if out.HistogramOK, err = EncodeHistogram(histOK); err != nil {
			return nil, nil, err
		}
	}
	if out.Window, err = window.result(); err != nil {
		return nil, nil, err
	}
	if out.Outside, err = outside.result(); err != nil {
		return nil, nil, err
	}
	out.SeriesUnknown = unknownSeriesFields(results)
	var inexact int
	if out.Series, out.SeriesHistograms, inexact, err = mergeSeries(results, shift, sources); err != nil {
		return nil, nil, err
	}
	if inexact > 0 && inexact == len(out.Series) {
		// No second has them: the fields are unknown, not zero.
		out.SeriesUnknown = append([]string{fieldP50, fieldP90, fieldP99}, slices.DeleteFunc(out.SeriesUnknown, func(f string) bool { return f == fieldP90 })...)
	}
	if inexact > 0 {
		notes = append(notes, fmt.Sprintf("%d seconds of the merged series have no p50/p99: a run whose result keeps no per-second histograms (version 2) shares them with another", inexact))
	}
	var differ []string
	for _, field := range []struct{ name, value string }{{"transport", out.Transport}, {"protocol", out.Protocol}, {"target", out.Target}, {"REST engine", out.Client.Engine}} {
		if field.value == mixed {
			differ = append(differ, field.name)
		}
	}
	if len(differ) > 0 {
		notes = append(notes, fmt.Sprintf("the runs differ in %s: the merged result says %q there (merged_from keeps each run's)", strings.Join(differ, ", "), mixed))
	}
	if n := withServer(out.MergedFrom); n > 0 {
		notes = append(notes, fmt.Sprintf("%d of the inputs carry server figures (--metrics): not merged, since each machine's scrapes of one server count every machine's requests; merged_from[].server keeps each input's", n))
	}
	return out, notes, nil
}

// withServer is how many of the inputs carry a server block.
func withServer(inputs []MergedInput) int {
	n := 0
	for _, in := range inputs {
		if in.Server != nil {
			n++
		}
	}
	return n
}

// unknownSeriesFields are the per-second fields some result does not
// record: the merged seconds would hold part of a sum, so the whole field
// is unknown.
func unknownSeriesFields(results []*Result) []string {
	var out []string
	// A merged second's p90 comes from the merged histograms where every
	// input kept them; a second that could not get one holds zero, which
	// pages show as missing point by point.
	for _, f := range []string{fieldSent, fieldInflight, fieldBytesOut, fieldBytesIn} {
		for _, r := range results {
			if slices.Contains(r.SeriesUnknown, f) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// mixed stands for a field on which merged results differ.
const mixed = "mixed"

func sameOrMixed(results []*Result, field func(*Result) string) string {
	v := field(results[0])
	for _, r := range results[1:] {
		if field(r) != v {
			return mixed
		}
	}
	return v
}

// restOnly returns the results of REST runs (those with an engine).
func restOnly(results []*Result) []*Result {
	var out []*Result
	for _, r := range results {
		if r.Client.Engine != "" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return results
	}
	return out
}

// mergeConfig keeps the settings all results share, and says "mixed" for
// those they do not (a setting some lack included).
func mergeConfig(results []*Result) map[string]any {
	out := map[string]any{}
	for _, r := range results {
		for k := range r.Config {
			out[k] = nil
		}
	}
	for k := range out {
		var first []byte
		for i, r := range results {
			v, ok := r.Config[k]
			enc, _ := json.Marshal(v)
			if !ok || (i > 0 && !bytes.Equal(enc, first)) {
				out[k] = mixed
				break
			}
			first = enc
			out[k] = v
		}
	}
	return out
}

func mergedInput(r *Result, src string) MergedInput {
	in := MergedInput{
		File: src, Version: r.Version, Tool: r.Tool, Host: r.Host,
		StartedAt: r.StartedAt, Target: r.Target, Transport: r.Transport, Protocol: ProtocolOf(r), Engine: r.Client.Engine,
		Config: r.Config, Requests: r.Requests, ThroughputRPS: r.ThroughputRPS, Profile: r.Profile, Server: r.Server,
	}
	if wu := r.Phases.Warmup; wu.End > wu.Start {
		in.Warmup = &Span{Start: wu.Start, End: wu.End}
	}
	in.Steady = &Span{Start: r.Phases.Steady.Start, End: r.Phases.Steady.End}
	if r.Build.Version != "" {
		b := r.Build
		in.Build = &b
	}
	if !r.FinishedAt.IsZero() {
		f := r.FinishedAt
		in.FinishedAt = &f
	}
	if in.Config == nil {
		in.Config = map[string]any{}
	}
	return in
}

// mergePhaseSpan adds phase p of a run whose clock starts offset seconds
// into the merged one: counts add up, the span covers both.
// mergedThroughput is the requests (and the successful ones) of the
// runs over their merged steady span: adding the runs' own throughputs
// would count a run that stopped early (Ctrl-C on one machine) as if it
// had sent at its pace over the whole span. The span is at least each
// run's own (an open loop's counts the intended send times, which may
// outlast the first to last request).
func mergedThroughput(results []*Result, steady Phase) (rps, okRPS float64) {
	span := mergedSteadySpan(results, steady)
	var requests, ok float64
	for _, r := range results {
		if r.ThroughputRPS <= 0 {
			continue
		}
		own := float64(r.Requests) / r.ThroughputRPS
		requests += float64(r.Requests)
		ok += r.SuccessRPS * own
	}
	if span <= 0 {
		return 0, 0
	}
	return requests / span, ok / span
}

func mergePhaseSpan(dst *Phase, p Phase, offset float64) {
	addCounts(dst.Errors, p.Errors)
	if p.Requests == 0 {
		return
	}
	start, end := p.Start+offset, p.End+offset
	if dst.Requests == 0 {
		dst.Start, dst.End = start, end
	} else {
		dst.Start, dst.End = min(dst.Start, start), max(dst.End, end)
	}
	dst.Requests += p.Requests
}

type mergedLatency struct {
	stats Stats
	enc   string
}

// mergeWarmupLatency merges the warm-up latencies: exactly from their
// histograms when every run with a measured warm-up kept one (version 3),
// otherwise the count, min, mean, stddev and max from the runs' figures.
func mergeWarmupLatency(results []*Result, sources []string) (mergedLatency, bool, error) {
	var h *hdrhistogram.Histogram
	var pooled Stats
	exact := true
	for i, r := range results {
		wu := r.Phases.Warmup
		if wu.Latency.Count == 0 {
			continue
		}
		pooled = poolStats(pooled, wu.Latency)
		if wu.Histogram == "" {
			exact = false
			continue
		}
		wh, err := DecodeHistogram(wu.Histogram)
		if err != nil {
			return mergedLatency{}, false, fmt.Errorf("%s: phases.warmup.histogram: %w", sources[i], err)
		}
		if h == nil {
			h = wh
		} else {
			h.Merge(wh)
		}
	}
	if !exact || h == nil {
		return mergedLatency{stats: pooled}, exact, nil
	}
	enc, err := EncodeHistogram(h)
	return mergedLatency{stats: StatsOf(h), enc: enc}, true, err
}

// poolStats combines the figures of two disjoint sets of requests that do
// not depend on order: count, min, max, mean and (population) stddev.
// Percentiles cannot be combined from percentiles: they are left zero.
func poolStats(a, b Stats) Stats {
	if a.Count == 0 {
		return Stats{Count: b.Count, Min: b.Min, Mean: b.Mean, Stddev: b.Stddev, Max: b.Max}
	}
	n := float64(a.Count + b.Count)
	mean := (float64(a.Count)*a.Mean + float64(b.Count)*b.Mean) / n
	sq := func(s Stats) float64 { return float64(s.Count) * (s.Stddev*s.Stddev + s.Mean*s.Mean) }
	variance := max((sq(a)+sq(b))/n-mean*mean, 0)
	return Stats{Count: a.Count + b.Count, Min: min(a.Min, b.Min), Mean: mean, Stddev: math.Sqrt(variance), Max: max(a.Max, b.Max)}
}

// wholeSlice is every steady request of r as a Slice: the "outside" of a
// run that had no profile window.
func (r *Result) wholeSlice() *Slice {
	return &Slice{Requests: r.Requests, Errors: r.Errors, Latency: r.Latency, LatencyOK: r.LatencyOK, Histogram: r.Histogram, HistogramOK: r.HistogramOK}
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

// writeMergedInputs heads the summary of a merged result: one line for
// each run that went into it.
func writeMergedInputs(w io.Writer, r *Result, from string) {
	head := fmt.Sprintf("loadprof merge: %d runs", len(r.MergedFrom))
	if len(r.Workers) > 0 {
		head = fmt.Sprintf("loadprof run --workers: %d workers' runs", len(r.MergedFrom))
	}
	fmt.Fprintf(w, "%s %s, %s loop (latency from %s)\n", head, mergeTiming(r), r.Loop, from)
	width := 0
	for _, in := range r.MergedFrom {
		width = max(width, len(in.File))
	}
	for _, in := range r.MergedFrom {
		level := ""
		if v, ok := in.Config["rate"]; ok && r.Loop == "open" && FormatSetting(v) != "" {
			level = fmt.Sprintf(", %s req/s offered", FormatSetting(v))
		} else if v, ok := in.Config["concurrency"]; ok && r.Loop == "closed" && FormatSetting(v) != "" {
			level = fmt.Sprintf(", concurrency %s", FormatSetting(v))
		}
		host := ""
		if in.Host != nil && in.Host.Name != "" {
			host = " on " + in.Host.Name
		}
		fmt.Fprintf(w, "  %-*s  %s %s%s; started %s%s: %d requests, %.1f req/s\n", width, in.File, strings.ToUpper(in.Transport), headingTarget(in.Target, in.Protocol),
			level, in.StartedAt.UTC().Format("15:04:05.000"), host, in.Requests, in.ThroughputRPS)
	}
}

// mergeTiming says when a merge's inputs were made against each other:
// "made at the same time (started within 0.4 s)", or, for runs merged
// with --force, how far apart they were.
func mergeTiming(r *Result) string {
	ins := r.MergedFrom
	if len(ins) == 0 {
		return "merged"
	}
	first, last := ins[0].StartedAt, ins[0].StartedAt
	overlap, known := true, true
	var latestStart, earliestEnd time.Time
	for i, in := range ins {
		if in.StartedAt.Before(first) {
			first = in.StartedAt
		}
		if in.StartedAt.After(last) {
			last = in.StartedAt
		}
		if in.Steady == nil {
			known = false
			continue
		}
		start := in.StartedAt.Add(time.Duration(in.Steady.Start * float64(time.Second)))
		end := in.StartedAt.Add(time.Duration(in.Steady.End * float64(time.Second)))
		if i == 0 || start.After(latestStart) {
			latestStart = start
		}
		if i == 0 || end.Before(earliestEnd) {
			earliestEnd = end
		}
	}
	if known {
		overlap = latestStart.Before(earliestEnd)
	}
	spread := FormatDuration(last.Sub(first).Seconds())
	switch {
	case !known:
		return "started within " + spread
	case overlap:
		return "made at the same time (started within " + spread + ")"
	}
	return "made apart: their starts are " + spread + " apart and their steady phases do not overlap"
}

// mergeShift is how many whole seconds a run that started offset seconds
// into a merge moves its per-second series by: they stay whole seconds.
func mergeShift(offset float64) int { return int(math.Round(offset)) }

// mergeGoodput puts the inputs' goodput in out when each has one under the
// same objective: each input judged its own requests one by one, so the
// good requests add up exactly, the share is of the inputs' requests
// together and the rate is over the merged steady span (as
// output_tokens_per_s). An input's share is of its requests' stream
// count (every steady request an OpenAI-compatible target sent): its
// good requests over its share give that count back exactly; an input
// with none good falls back on its steady requests, the same count but
// for a request finished in the moment between the two recorders'
// freezes. Inputs without a goodput, or under another objective, leave
// it out, with a note.
func mergeGoodput(out *Result, results []*Result, span float64) string {
	var with int
	slo := ""
	for _, r := range results {
		if r.Goodput == nil {
			continue
		}
		if with > 0 && r.Goodput.SLO != slo {
			return fmt.Sprintf("the goodput is left out: the inputs judged it under different objectives (%q, %q)", slo, r.Goodput.SLO)
		}
		with++
		slo = r.Goodput.SLO
	}
	switch {
	case with == 0:
		return ""
	case with < len(results):
		return fmt.Sprintf("the goodput is left out: %d of the %d inputs have none (--slo with LLM terms on every run)", len(results)-with, len(results))
	}
	var good, of int64
	for _, r := range results {
		g := r.Goodput
		good += g.Requests
		if g.Requests > 0 && g.Share > 0 {
			of += int64(math.Round(float64(g.Requests) / g.Share))
		} else {
			of += r.Requests
		}
	}
	g := &Goodput{Requests: good, SLO: slo}
	if of > 0 {
		g.Share = float64(good) / float64(of)
	}
	if span > 0 {
		g.Rate = float64(good) / span
	}
	out.Goodput = g
	return ""
}
