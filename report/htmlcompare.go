package report

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
)

//go:embed compare.html.tmpl
var compareTemplate string

var compareTmpl = template.Must(template.New("compare").Parse(compareTemplate))

// Each run keeps its colour on every chart and in every table of the
// compare page: base blue, new orange (distinct for colour-blind readers).
const (
	baseColor = "#1f6fb4"
	newColor  = "#e07000"
)

// CompareOptions tune WriteCompareHTML.
type CompareOptions struct {
	Limits []Limit // as compare --max takes them
	// NoisyFails counts a noisy verdict as regressed, as compare
	// --noisy-fails does, so the page says what that gate says.
	NoisyFails bool

	// NoAssets leaves the chart library out (for tests of the page's
	// text alone).
	NoAssets bool
}

// compareRun is one side of the compare page.
type compareRun struct {
	Role, Name, Color string
	Result            *Result
	Errors            int64
	Load              string // "open loop at 300 req/s"
	Transport         string // "REST (epoll engine)"
	SteadyS           float64
	Window            string // "2.0s to 3.0s", or ""
	SendLagMs         float64
}

// compareRow is one metric of the verdict table, formatted.
type compareRow struct {
	Metric, Base, New, Change, Percent, Limit, Verdict, Why, Spread string
}

// settingDiff is a setting whose value differs between the runs.
type settingDiff struct{ Key, Base, New string }

// compareChart is what the compare page's script plots: the same series
// as the report of one run, for two runs, with each run's warm-up and
// profile window drawn on a band of its own.
type compareChart struct {
	PercentileX []float64          `json:"percentile_x"`
	TimeX       []float64          `json:"time_x"`
	Runs        []compareChartData `json:"runs"`
}

type compareChartData struct {
	Role         string      `json:"role"`
	Name         string      `json:"name"`
	Color        string      `json:"color"`
	PercentileMs []*float64  `json:"percentile_ms"`
	RPS          []*float64  `json:"rps"`
	P50Ms        []*float64  `json:"p50_ms"`
	P99Ms        []*float64  `json:"p99_ms"`
	Errors       []*float64  `json:"errors"`
	Warmup       [][]float64 `json:"warmup,omitempty"` // spans: a merge's inputs each have their own
	Window       []float64   `json:"window,omitempty"`
}

// WriteCompareHTML writes the self-contained page of `loadprof report
// BASE.json NEW.json --html`: the verdict of every metric against the
// limits (as compare prints it), the notes that say why the runs may not
// be comparable, the settings that differ, and both runs on the same
// charts, base and new in one colour each throughout.
func WriteCompareHTML(w io.Writer, base, next *Result, names [2]string, opts CompareOptions) error {
	c := Compare(base, next, opts.Limits)
	if opts.NoisyFails {
		c.CountNoisyAsRegressed()
	}
	results := [2]*Result{base, next}
	roles, colors := [2]string{"base", "new"}, [2]string{baseColor, newColor}

	chart := compareChart{PercentileX: percentileAxis(), TimeX: []float64{}} // [] not null: a result may have no series
	maxT := 0
	for _, r := range results {
		for _, s := range r.Series {
			if secondLength(r, s.Second) > 0 {
				maxT = max(maxT, s.Second+1)
			}
		}
	}
	for t := 0; t < maxT; t++ {
		chart.TimeX = append(chart.TimeX, float64(t))
	}
	var runs []compareRun
	for i, r := range results {
		h, err := DecodeHistogram(r.Histogram)
		if err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
		d := compareChartData{Role: roles[i], Name: filepath.Base(names[i]), Color: colors[i],
			RPS: []*float64{}, P50Ms: []*float64{}, P99Ms: []*float64{}, Errors: []*float64{}}
		for _, x := range chart.PercentileX {
			// Past 1/(1-p) = count the curve is a single request: stop.
			if h.TotalCount() == 0 || x > float64(h.TotalCount()) {
				d.PercentileMs = append(d.PercentileMs, nil)
				continue
			}
			v := float64(valueAtPercentile(h, 100*(1-1/x))) / usPerMs
			d.PercentileMs = append(d.PercentileMs, &v)
		}
		bySecond := map[int]Second{}
		for _, s := range r.Series {
			bySecond[s.Second] = s
		}
		for t := 0; t < maxT; t++ {
			s, ok := bySecond[t]
			length := secondLength(r, t)
			if !ok || length == 0 {
				d.RPS, d.P50Ms, d.P99Ms, d.Errors = append(d.RPS, nil), append(d.P50Ms, nil), append(d.P99Ms, nil), append(d.Errors, nil)
				continue
			}
			// The final partial second's counts are per its real length.
			d.RPS, d.Errors = append(d.RPS, ptr(float64(s.Requests)/length)), append(d.Errors, ptr(float64(s.Errors)/length))
			d.P50Ms, d.P99Ms = append(d.P50Ms, latencyMs(s.P50Us)), append(d.P99Ms, latencyMs(s.P99Us))
		}
		d.Warmup = warmupSpans(r)
		run := compareRun{Role: roles[i], Name: d.Name, Color: colors[i], Result: r, Errors: sum(r.Errors),
			Load: loadWords(r), Transport: transportWords(r), SteadyS: r.Phases.Steady.End - r.Phases.Steady.Start, SendLagMs: r.Client.MaxFreeSendLagMs}
		if hasWindow(r) {
			d.Window = []float64{r.Profile.WindowStartS, r.Profile.WindowEndS}
			run.Window = fmt.Sprintf("%.1fs to %.1fs", r.Profile.WindowStartS, r.Profile.WindowEndS)
		}
		chart.Runs = append(chart.Runs, d)
		runs = append(runs, run)
	}

	var rows []compareRow
	for _, r := range c.Rows {
		b, n, change := r.cells()
		row := compareRow{Metric: r.Metric, Base: b, New: n, Change: change, Percent: "-", Verdict: r.Verdict, Why: r.Noisy}
		if !math.IsNaN(r.Percent) {
			row.Percent = fmt.Sprintf("%+.1f%%", r.Percent)
		}
		if r.Limit != nil {
			row.Limit = r.Limit.String()
		}
		if r.Spread > 0 {
			row.Spread = "±" + num(r.Spread, r.Unit)
		}
		rows = append(rows, row)
	}
	verdict, verdictClass := "no regression", "pass"
	switch {
	case len(c.Broken) > 0:
		verdict, verdictClass = fmt.Sprintf("regressed: %s over the limit", strings.Join(c.Broken, ", ")), "regressed"
	case len(c.Noisy) > 0:
		verdict, verdictClass = fmt.Sprintf("no regression; noisy: %s over the limit by less than the runs vary", strings.Join(c.Noisy, ", ")), "noisy"
	case len(opts.Limits) == 0:
		verdict, verdictClass = "no limits given (--max): every metric shows only which way it moved", "none"
	}

	raw, err := json.Marshal(chart)
	if err != nil {
		return err
	}
	view := struct {
		Title, Version        string
		Verdict, VerdictClass string
		Runs                  []compareRun
		Rows                  []compareRow
		ServerRows            bool
		Notes                 []string
		Differ                []settingDiff
		BaseColor, NewColor   string
		BaseConfig, NewConfig []kv
		Data                  template.JS
		JS                    template.JS
		CSS                   template.CSS
	}{
		Title: runs[0].Name + " (base) vs " + runs[1].Name + " (new)", Version: Version,
		Verdict: verdict, VerdictClass: verdictClass, Runs: runs, Rows: rows, Notes: c.Notes, ServerRows: len(compareServer(base, next, nil)) > 0,
		Differ: settingsThatDiffer(base, next), BaseColor: baseColor, NewColor: newColor,
		BaseConfig: configRows(base.Config), NewConfig: configRows(next.Config), Data: template.JS(raw),
	}
	if !opts.NoAssets {
		view.JS, view.CSS = template.JS(uplotJS), template.CSS(uplotCSS)
	}
	return compareTmpl.Execute(w, view)
}

func ptr(v float64) *float64 { return &v }

// latencyMs is a per-second latency in ms, nil when the second has none
// (or a merge could not know it): never a 0 ms point.
func latencyMs(us int64) *float64 {
	if us <= 0 {
		return nil
	}
	return ptr(float64(us) / usPerMs)
}

// outputFlags name where a run wrote its files: they differ between any two
// runs and change nothing they measure.
var outputFlags = map[string]bool{"out": true, "html": true, "hgrm": true, "hlog": true, "quiet": true}

// settingsThatDiffer lists the settings whose values differ between the
// runs, and the fields of the results that say how they ran.
func settingsThatDiffer(base, next *Result) []settingDiff {
	var out []settingDiff
	add := func(key string, b, n any) {
		if !sameSetting(b, n) {
			name := strings.TrimPrefix(key, "--")
			out = append(out, settingDiff{key, FormatSettingOf(name, b), FormatSettingOf(name, n)})
		}
	}
	add("transport", base.Transport, next.Transport)
	add("protocol", ProtocolOf(base), ProtocolOf(next)) // a result that does not say ran TF Serving's
	add("engine", base.Client.Engine, next.Client.Engine)
	add("loop", base.Loop, next.Loop)
	add("target", base.Target, next.Target)
	keys := map[string]bool{}
	for k := range base.Config {
		keys[k] = true
	}
	for k := range next.Config {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if outputFlags[k] {
			continue
		}
		// A profile window's settings (--profile-delay, ...) mean nothing
		// for a run without one; that one run had a window is said apart.
		if strings.HasPrefix(k, "profile-") && (base.Profile == nil || next.Profile == nil) {
			continue
		}
		b, okB := base.Config[k]
		n, okN := next.Config[k]
		if !okB {
			b = "(not set)"
		}
		if !okN {
			n = "(not set)"
		}
		add("--"+k, b, n)
	}
	return out
}

// percentileAxis is HdrHistogram's percentile axis, 1/(1-p) from 1 to
// 10^6 in tenths of a decade.
func percentileAxis() []float64 {
	var xs []float64
	for i := 0; i <= 60; i++ {
		xs = append(xs, math.Pow(10, float64(i)/10))
	}
	return xs
}
