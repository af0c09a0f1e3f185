package bench

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loadprof/loadprof/load"
)

// The chart library is uPlot from npm (bench/assets/VERSIONS), embedded so
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
}).Parse(reportTemplate))

// reportRun is one result in a report.
type reportRun struct {
	Name   string
	Result *Result
	Errors int64
	Config []kv
}

type kv struct{ Key, Value string }

// chartData is what the page's script plots.
type chartData struct {
	Sweep       *sweepChart   `json:"sweep,omitempty"`
	PercentileX []float64     `json:"percentile_x"`
	TimeX       []float64     `json:"time_x"`
	Runs        []chartSeries `json:"runs"`
}

type chartSeries struct {
	Name         string     `json:"name"`
	PercentileMs []*float64 `json:"percentile_ms"`
	RPS          []*float64 `json:"rps"`
	P50Ms        []*float64 `json:"p50_ms"`
	P99Ms        []*float64 `json:"p99_ms"`
	Errors       []*float64 `json:"errors"`
	Warmup       []float64  `json:"warmup"`
	Window       []float64  `json:"window"`
}

// sweepChart is latency against achieved throughput, one point a step.
type sweepChart struct {
	RPS   []float64 `json:"rps"`
	P50Ms []float64 `json:"p50_ms"`
	P99Ms []float64 `json:"p99_ms"`
}

// percentileAxis is HdrHistogram's plotter axis: x = 1/(1-percentile), from
// 0% to 99.9999%, ten points a decade.
func percentileAxis() []float64 {
	var xs []float64
	for i := 0; i <= 60; i++ {
		xs = append(xs, math.Pow(10, float64(i)/10))
	}
	return xs
}

// ReportOptions tune WriteHTML.
type ReportOptions struct {
	// Sweep, when set, adds latency against throughput over its steps.
	Sweep *SweepResult

	// NoAssets leaves the chart library out (for golden-file tests of the
	// template itself).
	NoAssets bool
}

// WriteHTML writes one self-contained HTML report of one or more results:
// latency by percentile on HdrHistogram's axis, throughput, p50/p99 and
// errors over time with the warm-up and the profile window shaded, each
// run's settings and its trace summary.
func WriteHTML(w io.Writer, results []*Result, names []string, opts ReportOptions) error {
	data := chartData{PercentileX: percentileAxis()}
	var runs []reportRun
	maxT := 0
	for _, r := range results {
		for _, s := range r.Series {
			if s.Second+1 > maxT {
				maxT = s.Second + 1
			}
		}
	}
	for t := 0; t < maxT; t++ {
		data.TimeX = append(data.TimeX, float64(t))
	}
	for i, r := range results {
		name := filepath.Base(names[i])
		h, err := DecodeHistogram(r.Histogram)
		if err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
		cs := chartSeries{Name: name}
		for _, x := range data.PercentileX {
			if h.TotalCount() == 0 {
				cs.PercentileMs = append(cs.PercentileMs, nil)
				continue
			}
			v := float64(load.ValueAtPercentile(h, 100*(1-1/x))) / usPerMs
			cs.PercentileMs = append(cs.PercentileMs, &v)
		}
		perSecond := map[int]int{}
		for j, s := range r.Series {
			perSecond[s.Second] = j
		}
		for t := 0; t < maxT; t++ {
			j, ok := perSecond[t]
			if !ok {
				cs.RPS, cs.P50Ms, cs.P99Ms, cs.Errors = append(cs.RPS, nil), append(cs.P50Ms, nil), append(cs.P99Ms, nil), append(cs.Errors, nil)
				continue
			}
			s := r.Series[j]
			rps, errs := float64(s.Requests), float64(s.Errors)
			cs.RPS, cs.Errors = append(cs.RPS, &rps), append(cs.Errors, &errs)
			if s.Requests > s.Errors {
				p50, p99 := float64(s.P50Us)/usPerMs, float64(s.P99Us)/usPerMs
				cs.P50Ms, cs.P99Ms = append(cs.P50Ms, &p50), append(cs.P99Ms, &p99)
			} else {
				cs.P50Ms, cs.P99Ms = append(cs.P50Ms, nil), append(cs.P99Ms, nil)
			}
		}
		if wu := r.Phases.Warmup; wu.Requests > 0 {
			cs.Warmup = []float64{wu.Start, wu.End}
		}
		if p := r.Profile; p != nil && p.WindowEndS > p.WindowStartS {
			cs.Window = []float64{p.WindowStartS, p.WindowEndS}
		}
		data.Runs = append(data.Runs, cs)
		runs = append(runs, reportRun{Name: name, Result: r, Errors: sum(r.Errors), Config: configRows(r.Config)})
	}
	if sw := opts.Sweep; sw != nil {
		steps := append([]StepResult(nil), sw.Steps...)
		sort.SliceStable(steps, func(i, j int) bool { return steps[i].Result.ThroughputRPS < steps[j].Result.ThroughputRPS })
		data.Sweep = &sweepChart{}
		for _, st := range steps {
			data.Sweep.RPS = append(data.Sweep.RPS, st.Result.ThroughputRPS)
			data.Sweep.P50Ms = append(data.Sweep.P50Ms, st.Result.Latency.P50)
			data.Sweep.P99Ms = append(data.Sweep.P99Ms, st.Result.Latency.P99)
		}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var titles []string
	for _, r := range runs {
		titles = append(titles, r.Name)
	}
	view := struct {
		Title, Version, LatencyFrom string
		Sweep                       string
		Runs                        []reportRun
		Data                        template.JS
		JS                          template.JS
		CSS                         template.CSS
	}{
		Title: strings.Join(titles, " vs "), Version: Version, LatencyFrom: latencyFrom(results),
		Runs: runs, Data: template.JS(raw),
	}
	if opts.Sweep != nil {
		view.Sweep = opts.Sweep.Stopped
		if opts.Sweep.SLO != "" {
			view.Sweep = "SLO " + opts.Sweep.SLO + "; " + view.Sweep
		}
	}
	if !opts.NoAssets {
		view.JS, view.CSS = template.JS(uplotJS), template.CSS(uplotCSS)
	}
	return reportTmpl.Execute(w, view)
}

func latencyFrom(results []*Result) string {
	from := map[string]bool{}
	for _, r := range results {
		from[r.LatencyFrom] = true
	}
	switch {
	case len(from) > 1:
		return "intended send time (open loop) or send time (closed loop), depending on the run"
	case from["intended_send"]:
		return "intended send time (open loop)"
	}
	return "send time (closed loop)"
}

func configRows(cfg map[string]any) []kv {
	var rows []kv
	for k, v := range cfg {
		rows = append(rows, kv{k, fmt.Sprint(v)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

// WriteSweepHTML writes the report of a sweep: latency against throughput,
// then every step as a run.
func WriteSweepHTML(w io.Writer, sw *SweepResult) error {
	var results []*Result
	var names []string
	for _, st := range sw.Steps {
		if st.Result == nil {
			continue
		}
		results = append(results, st.Result)
		name := fmt.Sprintf("rate_%g", st.Level)
		if sw.Loop == "closed" {
			name = fmt.Sprintf("concurrency_%g", st.Level)
		}
		names = append(names, name)
	}
	if len(results) == 0 {
		return fmt.Errorf("the sweep has no finished step")
	}
	return WriteHTML(w, results, names, ReportOptions{Sweep: sw})
}
