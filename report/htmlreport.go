package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/profile"
)

// The chart library is uPlot from npm (report/assets/VERSIONS), embedded so
// that a report needs no network when it is opened.
var (
	//go:embed assets/uPlot.iife.min.js
	uplotJS string
	//go:embed assets/uPlot.min.css
	uplotCSS string
	//go:embed report.html.tmpl
	reportTemplate string
)

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"percent": func(f float64) float64 { return 100 * f },
	"ms":      func(v float64) string { return fmt.Sprintf("%.3f", v) },
	// cell is a latency figure of a row with requests, "n/a" of one
	// without: no latency is not a latency of 0.
	"cell": func(known bool, v float64) string {
		if !known {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", v)
	},
	// latms is a latency that is never 0 when known (a percentile or the
	// maximum of requests that reached the server).
	"latms": func(v float64) string {
		if v <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", v)
	},
	"placement": func(p string) string {
		switch p {
		case profile.PlacedAtServerStart:
			return "The client plane is on the server's timeline"
		case profile.PlacedAtEstimatedStart:
			return "The client plane is placed by the Profile call's timing alone"
		case profile.PlacedAtFirstRequest:
			return "The client plane counts from its first request (not lined up with the server's)"
		}
		return "Client plane: " + p
	},
	"method": func(m string) string {
		switch m {
		case profile.OffsetFromRequests:
			return "from the server's request events"
		case profile.OffsetFromProfileCall:
			return "from the Profile call's timing"
		case profile.OffsetFromCallOnly:
			return "from the Profile call's timing alone"
		}
		return m
	},
	// sentence capitalises a note and ends it with a full stop.
	"sentence": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:] + "."
	},
}).Parse(reportTemplate))

// ReportOptions tune WriteHTML.
type ReportOptions struct {
	// NoAssets leaves the chart library out (for golden-file tests of the
	// template itself).
	NoAssets bool
}

// runView is one result as its section of the page shows it.
type runView struct {
	ID       string // prefix of the element ids of this run's section
	Name     string
	Result   *Result
	Facts    []kv
	Warnings []string
	Latency  []latencyRow
	Errors   []errorRow
	ErrTotal int64
	ErrPct   float64
	Config   []kv
	// TailNote says what the charts did with the run's final partial
	// second.
	TailNote string
	// Inputs are a merge's runs, one row each.
	Inputs []inputRow
	// What the result does not record per second (SeriesUnknown): its
	// charts are left out, and Missing says why.
	NoSent, NoInflight, NoBytes bool
	Missing                     string
	BytesNote                   string
	// Server is the server's figures beside the client's (--metrics).
	Server []serverRow
	// ServerProfile is the server's figures over the profile window
	// beside the client's window requests.
	ServerProfile []serverRow
	// LLM is an OpenAI-compatible target's stream figures; nil for others.
	LLM *llmView
}

// inputRow is one run of a merge as the page lists it.
type inputRow struct {
	File, Target, Transport, Load, Started, Host, Steady string
	Requests                                             int64
	RPS                                                  float64
}

type kv struct{ Key, Value string }

// latencyRow is one line of the latency table: all steady requests, the
// successful ones, those sent in the profile window and the others.
type latencyRow struct {
	Key, Label string
	Known      bool // it has requests with a latency: otherwise its figures are n/a, not 0
	Requests   int64
	Errors     int64
	Stats      Stats
}

// errorRow is one failure class with its count and the first message seen.
type errorRow struct {
	Class         string
	Count, Warmup int64
	Pct           float64
	Sample        string
}

// runChart is what the page's script plots for one run.
type runChart struct {
	ID string `json:"id"`
	// Per-second series; x is the middle of the second, in seconds since
	// the run started, so that a point sits in the span it sums. Rates are
	// per second of the second's own length (the final second is usually
	// partial).
	Time []float64  `json:"time"`
	Sent []*float64 `json:"sent"`
	// Offered is an open loop's planned rate (--rate), a flat line: what
	// was sent falls below it when requests waited for a free slot or
	// were never sent.
	Offered  float64     `json:"offered,omitempty"`
	OK       []*float64  `json:"ok"`
	Errors   []*float64  `json:"errors"`
	Inflight []*float64  `json:"inflight"`
	BytesOut []*float64  `json:"bytes_sent"`     // per second, by the second requests were sent
	BytesIn  []*float64  `json:"bytes_received"` // per second, by the second answers finished
	P50Ms    []*float64  `json:"p50_ms"`
	P90Ms    []*float64  `json:"p90_ms"`
	P99Ms    []*float64  `json:"p99_ms"`
	MaxMs    []*float64  `json:"max_ms"`
	EndS     float64     `json:"end_s"`            // the x axis's end: the run's last completion
	Warmup   [][]float64 `json:"warmup,omitempty"` // spans; a merge's inputs each have their own
	// Absent names the per-second fields the result does not record: the
	// page leaves their lines out rather than draw zeros.
	Absent []string `json:"absent,omitempty"`
	// Gaps: the series skips seconds (a merge of runs made apart); the
	// page marks each point, as a line may be too short to see.
	Gaps      bool      `json:"gaps,omitempty"`
	Window    []float64 `json:"window,omitempty"`
	ClosedRun bool      `json:"closed"`

	// TTFTP99Ms is an OpenAI-compatible target's p99 time to first token
	// per second, beside the latency; absent for other targets.
	TTFTP99Ms []*float64 `json:"ttft_p99_ms,omitempty"`

	Percentiles percentileChart `json:"percentiles"`
	Dist        distribution    `json:"distribution"`
	Server      *serverChart    `json:"server,omitempty"`
	// LLMPercentiles are an OpenAI-compatible target's TTFT and ITL by
	// percentile, on the latency chart's axis.
	LLMPercentiles *percentileChart `json:"llm_percentiles,omitempty"`
}

// percentileChart is latency by percentile on HdrHistogram's axis, x =
// 1/(1-percentile), one curve per slice of the run.
type percentileChart struct {
	X      []float64    `json:"x"`
	Curves []namedCurve `json:"curves"`
}

type namedCurve struct {
	Name  string     `json:"name"`
	Count int64      `json:"count"`
	Ms    []*float64 `json:"ms"`
}

// distribution is the latency histogram in log-spaced bins.
type distribution struct {
	FromMs []float64 `json:"from_ms"`
	Count  []float64 `json:"count"`
}

// pointsPerDecade of the percentile axis.
const pointsPerDecade = 10

// percentileCurves puts the named histograms on one percentile axis. Each
// curve stops at 1/(1-p) = its count, the last percentile its sample
// resolves (HdrHistogram's plotter stops there too): beyond, the curve
// would only repeat the maximum.
func percentileCurves(names []string, hs []*hdrhistogram.Histogram) percentileChart {
	var top int64
	for _, h := range hs {
		top = max(top, h.TotalCount())
	}
	xs := map[float64]bool{}
	for i := 0; ; i++ {
		x := math.Pow(10, float64(i)/pointsPerDecade)
		if x > float64(top) {
			break
		}
		xs[x] = true
	}
	for _, h := range hs {
		if n := h.TotalCount(); n > 0 {
			xs[float64(n)] = true
		}
	}
	var c percentileChart
	for x := range xs {
		c.X = append(c.X, x)
	}
	sort.Float64s(c.X)
	for i, h := range hs {
		curve := namedCurve{Name: names[i], Count: h.TotalCount()}
		for _, x := range c.X {
			if x > float64(h.TotalCount()) {
				curve.Ms = append(curve.Ms, nil)
				continue
			}
			v := float64(valueAtPercentile(h, 100*(1-1/x))) / usPerMs
			curve.Ms = append(curve.Ms, &v)
		}
		c.Curves = append(c.Curves, curve)
	}
	return c
}

// distributionOf bins h's counts into bins of equal width on a log axis
// (latency spans decades), from its minimum to its maximum.
func distributionOf(h *hdrhistogram.Histogram) distribution {
	var d distribution
	if h.TotalCount() == 0 {
		return d
	}
	const bins = 60
	lo, hi := math.Max(float64(h.Min()), 1), math.Max(float64(h.Max()), 1)
	if hi <= lo {
		hi = lo * 1.01
	}
	step := math.Log(hi/lo) / bins
	counts := make([]float64, bins)
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		// A bucket is placed by its lowest value, which min falls in.
		v := math.Max(float64(b.From), lo)
		i := int(math.Log(v/lo) / step)
		counts[min(max(i, 0), bins-1)] += float64(b.Count)
	}
	for i := 0; i < bins; i++ {
		d.FromMs = append(d.FromMs, lo*math.Exp(float64(i)*step)/usPerMs)
		d.Count = append(d.Count, counts[i])
	}
	// The last bin's upper edge, so that a step drawn to it has a width.
	d.FromMs, d.Count = append(d.FromMs, hi/usPerMs), append(d.Count, 0)
	return d
}

// seriesFields are the per-second keys a result may not carry (a version
// 2 result, or a merge of one), as SeriesUnknown names them.
const (
	fieldP50      = "p50_us"
	fieldP99      = "p99_us"
	fieldP90      = "p90_us"
	fieldSent     = "sent"
	fieldInflight = "inflight"
	fieldBytesOut = "bytes_sent"
	fieldBytesIn  = "bytes_received"
)

// chartOf turns r's series and histograms into what the page plots. A
// value the result does not hold is null, never zero: a per-second field
// it does not record (SeriesUnknown), a percentile a merged second could
// not get, the seconds between runs a merge put hours apart (null breaks
// the lines there). The note says what the charts did with the final
// partial second.
func chartOf(id string, r *Result) (runChart, string, error) {
	end := runEnd(r)
	// Time is never null on the page: a run shorter than a partial second
	// the rates can use has no point, and the script reads its length.
	c := runChart{ID: id, ClosedRun: r.Loop == "closed", EndS: end, Time: []float64{}}
	if r.Loop == "open" {
		c.Offered = r.Rate
	}
	c.Absent = r.SeriesUnknown
	unknown := map[string]bool{}
	for _, f := range r.SeriesUnknown {
		unknown[f] = true
	}
	tailNote := ""
	anyTTFT := false
	rate := func(field string, v, length float64) *float64 {
		if unknown[field] {
			return nil
		}
		x := v / length
		return &x
	}
	latency := func(us int64) *float64 {
		if us <= 0 {
			return nil // no latency that second, or none known
		}
		x := float64(us) / usPerMs
		return &x
	}
	gap := func(t float64) {
		c.Gaps = true
		c.Time = append(c.Time, t)
		for _, col := range []*[]*float64{&c.Sent, &c.OK, &c.Errors, &c.Inflight, &c.BytesOut, &c.BytesIn, &c.P50Ms, &c.P90Ms, &c.P99Ms, &c.MaxMs, &c.TTFTP99Ms} {
			*col = append(*col, nil)
		}
	}
	for i, s := range r.Series {
		if i > 0 && s.Second > r.Series[i-1].Second+1 {
			gap(float64(r.Series[i-1].Second) + 1.5) // no point there: the lines break
		}
		length := secondLength(r, s.Second)
		if i == len(r.Series)-1 && length < 1 {
			if length == 0 {
				tailNote = fmt.Sprintf("The run's final %s (in second %d) are left out of the rates: too short to give one.", FormatDuration(end-float64(s.Second)), s.Second)
				break
			}
			tailNote = fmt.Sprintf("The run's final second (%d) lasted %s: its rates are divided by that length, not by a whole second.", s.Second, FormatDuration(length))
		}
		c.Time = append(c.Time, float64(s.Second)+length/2)
		c.Sent = append(c.Sent, rate(fieldSent, float64(s.Sent), length))
		c.OK = append(c.OK, rate("", float64(s.Requests-s.Errors), length))
		c.Errors = append(c.Errors, rate("", float64(s.Errors), length))
		c.Inflight = append(c.Inflight, rate(fieldInflight, s.Inflight, length))
		c.BytesOut = append(c.BytesOut, rate(fieldBytesOut, float64(s.BytesSent), length))
		c.BytesIn = append(c.BytesIn, rate(fieldBytesIn, float64(s.BytesReceived), length))
		c.P50Ms, c.P90Ms = append(c.P50Ms, latency(s.P50Us)), append(c.P90Ms, latency(s.P90Us))
		c.P99Ms, c.MaxMs = append(c.P99Ms, latency(s.P99Us)), append(c.MaxMs, latency(s.MaxUs))
		c.TTFTP99Ms = append(c.TTFTP99Ms, latency(s.TTFTP99Us))
		anyTTFT = anyTTFT || s.TTFTP99Us > 0
	}
	if !anyTTFT {
		c.TTFTP99Ms = nil
	}
	c.Warmup = warmupSpans(r)
	if p := r.Profile; p != nil && p.WindowEndS > p.WindowStartS {
		c.Window = []float64{p.WindowStartS, p.WindowEndS}
	}
	all, err := DecodeHistogram(r.Histogram)
	if err != nil {
		return c, "", fmt.Errorf("\"histogram\": %w", err)
	}
	names, hs := []string{"all"}, []*hdrhistogram.Histogram{all}
	if r.Window != nil && r.Outside != nil {
		for _, s := range []struct {
			name  string
			slice *Slice
		}{{"window", r.Window}, {"outside", r.Outside}} {
			h, err := DecodeHistogram(s.slice.Histogram)
			if err != nil {
				return c, "", fmt.Errorf("%q histogram: %w", s.name, err)
			}
			names, hs = append(names, s.name), append(hs, h)
		}
	}
	c.Percentiles = percentileCurves(names, hs)
	c.Dist = distributionOf(all)
	c.Server = serverChartOf(r.Server)
	if r.LLMHistograms != nil {
		d, err := r.LLMHistograms.Decode()
		if err != nil {
			return c, "", fmt.Errorf("\"llm_histograms\": %w", err)
		}
		pc := percentileCurves([]string{"ttft", "itl"}, []*hdrhistogram.Histogram{d["ttft"], d["itl"]})
		c.LLMPercentiles = &pc
	}
	return c, tailNote, nil
}

// warmupSpans are the spans of r's warm-up on its clock: for a merge,
// each input's own (the merged phase spans from the first input's start
// to the last one's end, which for runs made apart is most of the chart).
func warmupSpans(r *Result) [][]float64 {
	var spans [][]float64
	if len(r.MergedFrom) > 0 {
		known := true
		for _, in := range r.MergedFrom {
			if in.Warmup == nil {
				known = in.Steady != nil // a run without a warm-up
				if !known {
					break
				}
				continue
			}
			offset := in.StartedAt.Sub(r.StartedAt).Seconds()
			if in.Warmup.End > in.Warmup.Start {
				spans = append(spans, []float64{in.Warmup.Start + offset, in.Warmup.End + offset})
			}
		}
		if known {
			return spans
		}
		spans = nil // merged by an older loadprof: only the merged span is known
	}
	if wu := r.Phases.Warmup; wu.Requests > 0 {
		spans = append(spans, []float64{wu.Start, wu.End})
	}
	return spans
}

// viewOf is the tables and notes of r's section.
func viewOf(id, name string, r *Result) runView {
	v := runView{ID: id, Name: name, Result: r, Config: configRows(r.Config)}
	v.Facts = runFacts(r)
	v.Inputs = inputRows(r)
	v.BytesNote = bytesNote(r)
	v.LLM = llmViewOf(r)
	for _, f := range r.SeriesUnknown {
		switch f {
		case fieldSent:
			v.NoSent = true
		case fieldInflight:
			v.NoInflight = true
		case fieldBytesOut, fieldBytesIn:
			v.NoBytes = true
		}
	}
	if len(r.SeriesUnknown) > 0 {
		v.Missing = "Not recorded per second in this result (" + strings.Join(r.SeriesUnknown, ", ") + "): written by a loadprof before version 3 of result.json, or merged from such a result."
	}
	v.Latency = append(v.Latency, latencyRow{Key: "all", Label: "all steady requests", Requests: r.Requests, Errors: sum(r.Errors), Stats: r.Latency})
	if r.LatencyOK.Count != r.Latency.Count {
		v.Latency = append(v.Latency, latencyRow{Key: "ok", Label: "successful only", Requests: r.LatencyOK.Count, Stats: r.LatencyOK})
	}
	if r.Window != nil {
		v.Latency = append(v.Latency, latencyRow{Key: "window", Label: "sent in the profile window", Requests: r.Window.Requests, Errors: sum(r.Window.Errors), Stats: r.Window.Latency})
		if r.Outside != nil {
			v.Latency = append(v.Latency, latencyRow{Key: "outside", Label: "sent outside it", Requests: r.Outside.Requests, Errors: sum(r.Outside.Errors), Stats: r.Outside.Latency})
		}
	}
	if wu := r.Phases.Warmup; wu.Requests > 0 {
		v.Latency = append(v.Latency, latencyRow{Key: "warmup", Label: "warm-up (not in the statistics)", Requests: wu.Requests, Errors: sum(wu.Errors), Stats: wu.Latency})
	}
	v.ErrTotal = sum(r.Errors)
	if r.Requests > 0 {
		v.ErrPct = 100 * float64(v.ErrTotal) / float64(r.Requests)
	}
	classes := map[string]bool{}
	for k := range r.Errors {
		classes[k] = true
	}
	for k := range r.Phases.Warmup.Errors {
		classes[k] = true
	}
	merged := map[string]int64{}
	for k := range classes {
		merged[k] = r.Errors[k] + r.Phases.Warmup.Errors[k]
	}
	for i := range v.Latency {
		v.Latency[i].Known = v.Latency[i].Stats.Count > 0
	}
	for _, k := range SortedKeys(merged) {
		row := errorRow{Class: k, Count: r.Errors[k], Warmup: r.Phases.Warmup.Errors[k]}
		if r.Requests > 0 {
			row.Pct = 100 * float64(row.Count) / float64(r.Requests)
		}
		if msg := r.ErrorSamples[k]; msg != k {
			row.Sample = oneLine(msg, 300)
		}
		v.Errors = append(v.Errors, row)
	}
	v.Warnings = clientWarnings(r)
	v.Server = serverRows(r)
	v.ServerProfile = profileServerRows(r)
	return v
}

// runFacts are the lines of a run's header: when, against what, how long
// and how.
func runFacts(r *Result) []kv {
	var facts []kv
	add := func(k, v string) {
		if v != "" {
			facts = append(facts, kv{k, v})
		}
	}
	if !r.StartedAt.IsZero() {
		add("started", r.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		if end := runEnd(r); end > 0 {
			add("finished", r.StartedAt.Add(time.Duration(end*float64(time.Second))).UTC().Format("2006-01-02 15:04:05 UTC"))
		}
	}
	target := r.Target
	if u, err := url.Parse(r.Target); err == nil && u.Host != "" {
		target = u.Host
	}
	if r.Target == mixed && len(r.MergedFrom) > 0 {
		add("target", "differs per input (see the inputs)")
	} else {
		add("target host", target)
		add("target", r.Target)
	}
	add("transport", transportWords(r))
	add("load", loadWords(r))
	if len(r.MergedFrom) > 0 {
		add("merge of", fmt.Sprintf("%d runs %s (inputs below)", len(r.MergedFrom), mergeTiming(r)))
	}
	for _, w := range r.Workers {
		add(fmt.Sprintf("worker %d", w.Index), workerWords(w))
	}
	if wu := r.Phases.Warmup; wu.Requests > 0 {
		if len(r.MergedFrom) > 0 {
			add("warm-up", fmt.Sprintf("each input's own (shaded on the charts), %d requests in all", wu.Requests))
		} else {
			add("warm-up", fmt.Sprintf("%s, %d requests", FormatDuration(wu.End-wu.Start), wu.Requests))
		}
	}
	st := r.Phases.Steady
	add("steady", fmt.Sprintf("%s (%s to %s), %d requests, %.1f req/s, %.1f ok/s", FormatDuration(st.End-st.Start), FormatDuration(st.Start), FormatDuration(st.End), r.Requests, r.ThroughputRPS, r.SuccessRPS))
	add("tool", r.Tool)
	return facts
}

// inputRows lists a merge's inputs: file, target, transport, load and
// start of each.
func inputRows(r *Result) []inputRow {
	var rows []inputRow
	for _, in := range r.MergedFrom {
		one := &Result{Loop: r.Loop, Config: in.Config, Transport: in.Transport, Client: ClientStats{Engine: in.Engine}}
		row := inputRow{File: in.File, Target: in.Target, Transport: transportWords(one), Load: loadWords(one),
			Started: in.StartedAt.UTC().Format("2006-01-02 15:04:05.000 UTC"), Requests: in.Requests, RPS: in.ThroughputRPS}
		if in.Host != nil {
			row.Host = in.Host.Name
		}
		if in.Steady != nil {
			row.Steady = FormatDuration(in.Steady.End - in.Steady.Start)
		}
		rows = append(rows, row)
	}
	return rows
}

// bytesNote says what the bytes chart counts, per transport.
func bytesNote(r *Result) string {
	const (
		grpcBytes = "gRPC: the request and response messages alone, without HTTP/2 framing and headers"
		restBytes = "REST: the HTTP bytes written and read on the connections, every try of a resent request"
	)
	switch r.Transport {
	case "grpc":
		return grpcBytes
	case "rest":
		return restBytes
	}
	return restBytes + "; " + grpcBytes + " (the merged lines add both up)"
}

// clientWarnings are the notes of the text summary (writeClientNotes) that
// say the numbers are not only the server's.
func clientWarnings(r *Result) []string {
	var w []string
	if r.Interrupted {
		msg := "Interrupted: partial results."
		if r.Unfinished > 0 {
			msg = fmt.Sprintf("Interrupted: partial results (%d requests still in flight were not counted).", r.Unfinished)
		}
		w = append(w, msg)
	}
	if len(r.MergedFrom) > 1 {
		if t := mergeTiming(r); strings.HasPrefix(t, "made apart") {
			w = append(w, "The inputs of this merge were "+t+" (merged with --force): their throughputs and requests in flight add up as if they had run at the same time, and the charts have a gap between them.")
		}
	}
	c := r.Client
	if r.Loop != "open" {
		return w
	}
	limit := "--max-inflight"
	if v, ok := r.Config["max-inflight"]; ok {
		limit = fmt.Sprintf("--max-inflight %v", v)
	}
	if c.Saturated > 0 || c.NotSent > 0 {
		msg := fmt.Sprintf("The server kept %s requests outstanding (it answers more slowly than the rate needs): %d requests were sent late, waiting for one to finish, and their wait is in the latency", limit, c.Saturated)
		if c.NotSent > 0 {
			msg += fmt.Sprintf("; %d more were still waiting when the steady phase ended and were not sent", c.NotSent)
		}
		w = append(w, msg+".")
	}
	if c.MaxFreeSendLagMs > 10 {
		w = append(w, fmt.Sprintf("Client send lag: with slots free, the client still fell up to %.1f ms behind its schedule (a busy client machine); latency counts from the schedule, so part of it is the client's.", c.MaxFreeSendLagMs))
	}
	return w
}

// configRows lists cfg's settings by name, leaving out those with no value
// (flags not given): a list of forty mostly empty flags hides the few that
// shaped the run.
func configRows(cfg map[string]any) []kv {
	var rows []kv
	for k, v := range cfg {
		if s := FormatSettingOf(k, v); s != "" && s != "[]" {
			rows = append(rows, kv{k, s})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

// pageView is everything the template renders.
type pageView struct {
	Title, Version string
	Runs           []runView
	Sweep          *sweepView
	Data           template.JS
	JS             template.JS
	CSS            template.CSS
}

// pageData is the JSON the page's script reads.
type pageData struct {
	Runs   []runChart        `json:"runs"`
	Sweep  *sweepChart       `json:"sweep,omitempty"`
	Colors map[string]string `json:"colors"`
}

// lineColors are the colours of the run page's lines, and shades those
// of its shaded spans (drawn at shadeAlpha over white). Each line keeps a
// contrast of 3:1 against white and against either shade (a test checks
// it), and the profile window's violet is far in hue from every latency
// line: a p99 in the orange of the window's shading could not be told
// from it.
var (
	lineColors = map[string]string{
		"offered": "#7f7f7f", "ok": "#1f77b4", "errors": "#d62728", "inflight": "#17607d",
		"bytes_sent": "#2a7f2a", "bytes_received": "#8c564b",
		"max": "#d62728", "p90": "#c0504d", "p99": "#c85a00", "p50": "#1f77b4",
		"all": "#222222", "window": "#7b4fa8", "fail": "#c62828", "outside": "#1f77b4", "distribution": "#1f77b4",
	}
	shades = map[string][3]int{"warmup": {128, 128, 128}, "window": {148, 103, 189}}
)

const shadeAlpha = 0.16

// pageColors is lineColors and the shades as CSS, for the page's script.
func pageColors() map[string]string {
	out := map[string]string{}
	for k, v := range lineColors {
		out[k] = v
	}
	for k, c := range shades {
		out["shade_"+k] = fmt.Sprintf("rgba(%d,%d,%d,%g)", c[0], c[1], c[2], shadeAlpha)
	}
	return out
}

// WriteHTML writes one self-contained HTML report per result, one after
// the other: the run's settings and the notes of its summary, latency of
// all requests against those sent in the profile window and outside it,
// errors by class, and charts of the load (offered and completed rates,
// requests in flight), of latency over time, by percentile and as a
// distribution, with the warm-up and the profile window shaded.
func WriteHTML(w io.Writer, results []*Result, names []string, opts ReportOptions) error {
	view := pageView{Version: Version}
	var data pageData
	var titles []string
	for i, r := range results {
		id := fmt.Sprintf("r%d", i)
		name := filepath.Base(names[i])
		c, note, err := chartOf(id, r)
		if err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
		v := viewOf(id, name, r)
		v.TailNote = note
		view.Runs = append(view.Runs, v)
		data.Runs = append(data.Runs, c)
		titles = append(titles, name)
	}
	view.Title = strings.Join(titles, ", ")
	return render(w, view, data, opts)
}

func render(w io.Writer, view pageView, data pageData, opts ReportOptions) error {
	data.Colors = pageColors()
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	view.Data = template.JS(raw)
	if !opts.NoAssets {
		view.JS, view.CSS = template.JS(uplotJS), template.CSS(uplotCSS)
	}
	return reportTmpl.Execute(w, view)
}

// sweepView is the sweep page's own part: the step table, the settings the
// steps share and the objective.
type sweepView struct {
	Loop, Level, SLO, Stopped string
	MaxPassing                string // "" when no step passed
	Shared                    []kv   // the sweep's settings and those every step shared
	Steps                     []stepRow
	Server                    bool // a step scraped the server's metrics: the table has its columns
}

type stepRow struct {
	N         int
	Name      string
	Color     template.CSS // made here, not from the input
	Level     float64
	Step      StepResult
	Errors    int64
	ErrPct    float64
	Highest   bool     // the highest passing level, marked on the chart
	Differs   []kv     // settings not shared by every step
	Notes     []string // bisection, unstable, profiled again
	RunID     string   // the id of its run section
	HasResult bool
	// ServerP99 and Outside are the server's p99 and the time outside it
	// (StepServerCells), with Server.
	ServerP99, Outside string
}

// sweepChart is latency against achieved throughput, one point a step,
// with the objective's limits.
type sweepChart struct {
	Steps    []sweepPoint `json:"steps"`
	Limits   []sloLimit   `json:"limits"`
	Highest  int          `json:"highest"` // index in Steps; -1 when none passed
	LevelKey string       `json:"level_key"`
}

type sweepPoint struct {
	Name  string  `json:"name"`
	Color string  `json:"color"`
	RPS   float64 `json:"rps"`
	Pass  bool    `json:"pass"`
	// Unstable: the step's halves disagreed on its last try.
	Unstable bool               `json:"unstable,omitempty"`
	Ms       map[string]float64 `json:"ms"` // p50, p90, p95, p99, p999, max, mean
}

type sloLimit struct {
	Metric string  `json:"metric"`
	Ms     float64 `json:"ms"`
}

// stepColor gives step i of n its own hue, evenly spread so that no two
// steps share a colour however many there are; lightness alternates so
// that neighbours differ more.
//
// Hues stay between 50 and 320 degrees, away from red: red is a failed
// step's cross (lineColors["fail"]), whatever the step.
func stepColor(i, n int) string {
	hue := 50 + i*270/max(n, 1)
	light := 36
	if i%2 == 1 {
		light = 46
	}
	if hue >= 40 && hue <= 190 {
		light -= 10 // yellows and greens look lighter than blues at the same lightness
	}
	return fmt.Sprintf("hsl(%d, 75%%, %d%%)", hue, light)
}

// WriteSweepHTML writes the report of a sweep: latency against achieved
// throughput on a log latency axis with the objective's limits and the
// highest passing step marked, a table of the steps with their verdicts,
// the settings every step shared once and what differed per step, then
// each step's own section.
func WriteSweepHTML(w io.Writer, sw *SweepResult) error {
	return writeSweepHTML(w, sw, ReportOptions{})
}

func writeSweepHTML(w io.Writer, sw *SweepResult, opts ReportOptions) error {
	sv := &sweepView{Loop: sw.Loop, Level: "rate", SLO: sw.SLO, Stopped: sw.Stopped}
	if sw.Loop == "closed" {
		sv.Level = "concurrency"
	}
	var finished []StepResult
	for _, st := range sw.Steps {
		if st.Result != nil {
			finished = append(finished, st)
		}
	}
	if len(finished) == 0 {
		return fmt.Errorf("the sweep has no finished step")
	}
	shared, differs := splitSettings(sw.Config, finished)
	sv.Shared = shared
	chart := &sweepChart{Highest: -1, LevelKey: sv.Level}
	if slo, err := ParseSLO(sw.SLO); err == nil && sw.SLO != "" {
		for _, m := range []string{"p50", "p90", "p95", "p99", "p999", "max", "mean"} {
			if v, ok := slo.Latency[m]; ok {
				chart.Limits = append(chart.Limits, sloLimit{Metric: m, Ms: v})
			}
		}
	}
	if sw.MaxPassing != nil {
		sv.MaxPassing = fmt.Sprintf("%g", *sw.MaxPassing)
	}
	sv.Server = sw.scrapedServer()
	view := pageView{Version: Version, Title: "sweep", Sweep: sv}
	var data pageData
	seen := map[float64]bool{}
	for i, st := range finished {
		r := st.Result
		name := fmt.Sprintf("%s %g", sv.Level, st.Level)
		color := stepColor(i, len(finished))
		row := stepRow{N: i + 1, Name: name, Color: template.CSS(color), Level: st.Level, Step: st,
			Errors: sum(r.Errors), Differs: differs[i], RunID: fmt.Sprintf("r%d", i), HasResult: true}
		if r.Requests > 0 {
			row.ErrPct = 100 * float64(row.Errors) / float64(r.Requests)
		}
		row.ServerP99, row.Outside = StepServerCells(r)
		if st.Bisection {
			row.Notes = append(row.Notes, "bisection step")
		}
		if seen[st.Level] {
			row.Notes = append(row.Notes, "run again with a profile")
		}
		seen[st.Level] = true
		if st.TraceRun != "" {
			row.Notes = append(row.Notes, "trace run "+st.TraceRun)
		}
		l := r.Latency
		chart.Steps = append(chart.Steps, sweepPoint{Name: name, Color: color, RPS: r.ThroughputRPS, Pass: st.Pass, Unstable: st.Unstable != "",
			Ms: map[string]float64{"p50": l.P50, "p90": l.P90, "p95": l.P95, "p99": l.P99, "p999": l.P999, "max": l.Max, "mean": l.Mean}})
		if sw.MaxPassing != nil && st.Pass && st.Level == *sw.MaxPassing && chart.Highest < 0 {
			chart.Highest, row.Highest = i, true
		}
		sv.Steps = append(sv.Steps, row)
		c, note, err := chartOf(row.RunID, r)
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		rv := viewOf(row.RunID, fmt.Sprintf("step %d: %s", i+1, name), r)
		rv.TailNote, rv.Config = note, differs[i]
		view.Runs = append(view.Runs, rv)
		data.Runs = append(data.Runs, c)
	}
	data.Sweep = chart
	return render(w, view, data, opts)
}

// splitSettings returns the sweep's own settings and those every step has
// with the same value, and per step the settings it does not share.
func splitSettings(sweepCfg map[string]any, steps []StepResult) ([]kv, [][]kv) {
	all := map[string]any{}
	for k, v := range sweepCfg {
		all[k] = v
	}
	for _, st := range steps {
		for k, v := range st.Result.Config {
			if _, ok := all[k]; !ok {
				all[k] = v
			}
		}
	}
	same := map[string]bool{}
	for k, v := range all {
		same[k] = true
		for _, st := range steps {
			sv, ok := st.Result.Config[k]
			if _, inSweep := sweepCfg[k]; !ok && inSweep {
				continue // the sweep's own setting, absent from a step: still shared
			}
			if !ok || !reflect.DeepEqual(sv, v) {
				same[k] = false
				break
			}
		}
	}
	// The sweep's own settings are shown whatever the steps did with them
	// (its --rate is the range the steps' rates came from).
	var shared []kv
	for k, v := range all {
		_, ofSweep := sweepCfg[k]
		if s := FormatSettingOf(k, v); (same[k] || ofSweep) && s != "" && s != "[]" {
			shared = append(shared, kv{k, s})
		}
	}
	sort.Slice(shared, func(i, j int) bool { return shared[i].Key < shared[j].Key })
	differs := make([][]kv, len(steps))
	for i, st := range steps {
		for _, row := range configRows(st.Result.Config) {
			if !same[row.Key] {
				differs[i] = append(differs[i], row)
			}
		}
	}
	return shared, differs
}
