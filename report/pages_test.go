package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
)

// renderRun writes the page of results and returns its DOM after
// Chromium ran its scripts.
func renderRun(t *testing.T, name string, results ...*Result) string {
	t.Helper()
	names := make([]string, len(results))
	for i := range results {
		names[i] = fmt.Sprintf("%s%d.json", name, i)
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, results, names, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), name+".html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	return testkit.PageDOM(t, page)
}

// A version 2 result records no offered rate, requests in flight, bytes
// or p90 per second: the page says so and draws none of them, rather than
// lines at zero.
func TestWhatAVersion2ResultDoesNotRecordIsNotDrawnAsZero(t *testing.T) {
	rest, _ := readV2(t)
	want := []string{fieldP90, fieldSent, fieldInflight, fieldBytesOut, fieldBytesIn}
	if strings.Join(rest.SeriesUnknown, ",") != strings.Join(want, ",") {
		t.Fatalf("series_unknown %v, want %v", rest.SeriesUnknown, want)
	}
	c, _, err := chartOf("r0", rest)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Time {
		for name, col := range map[string][]*float64{"sent": c.Sent, "inflight": c.Inflight, "bytes sent": c.BytesOut, "bytes received": c.BytesIn, "p90": c.P90Ms} {
			if col[i] != nil {
				t.Fatalf("%s at %v s is %v: the result does not record it", name, c.Time[i], *col[i])
			}
		}
		if c.OK[i] == nil || c.P50Ms[i] == nil {
			t.Fatalf("what the result records is missing at %v s", c.Time[i])
		}
	}
	dom := renderRun(t, "v2", rest)
	if got := testkit.DOMAttr(t, dom, "r0-rate", "data-series"); got != "3" {
		t.Errorf("rate chart: %s series, want the planned rate, completed and errors (no sent line)", got)
	}
	for _, id := range []string{"r0-inflight-missing", "r0-bytes-missing"} {
		if !strings.Contains(dom, `id="`+id+`"`) {
			t.Errorf("no #%s note", id)
		}
	}
	if strings.Contains(dom, `id="r0-inflight"`) || strings.Contains(dom, `id="r0-bytes"`) {
		t.Error("the page draws requests in flight or bytes the result does not record")
	}
}

// A run in which no request succeeded has no successful latency: n/a, not
// 0.000; a merged second that could not get percentiles has none either.
func TestLatencyThatIsNotThereIsNA(t *testing.T) {
	r := goldenResult(t)
	r.Errors, r.LatencyOK, r.HistogramOK = map[string]int64{"http_503": r.Requests}, Stats{}, ""
	r.SuccessRPS = 0
	r.Series[2].P50Us, r.Series[2].P90Us, r.Series[2].P99Us = 0, 0, 0 // a merged second without histograms
	c, _, err := chartOf("r0", r)
	if err != nil {
		t.Fatal(err)
	}
	if c.P50Ms[2] != nil || c.P99Ms[2] != nil || c.MaxMs[2] == nil {
		t.Fatalf("second 2: p50 %v, p99 %v, max %v; want no percentiles and its max", c.P50Ms[2], c.P99Ms[2], c.MaxMs[2])
	}
	dom := renderRun(t, "failed", r)
	cells := testkit.DOMCells(dom, "data-slice", "ok")
	for _, stat := range []string{"min", "mean", "p50", "p99", "max", "stddev"} {
		if cells[stat] != "n/a" {
			t.Errorf("successful only %s: %q, want n/a", stat, cells[stat])
		}
	}
	if cells["requests"] != "0" {
		t.Errorf("successful only: %q requests", cells["requests"])
	}
	if all := testkit.DOMCells(dom, "data-slice", "all"); all["p50"] == "n/a" {
		t.Error("the failed requests' latency is known")
	}
}

// mergeApart merges the two stored version 2 runs with the second moved
// hours later, as merge --force does.
func mergeApart(t *testing.T, apart time.Duration) *Result {
	t.Helper()
	rest, grpc := readV2(t)
	grpc.StartedAt = grpc.StartedAt.Add(apart)
	if apart > time.Minute && CheckMergeable([]*Result{rest, grpc}, []string{"rest.json", "grpc.json"}) == nil {
		t.Fatal("runs hours apart passed the check")
	}
	m, _, err := Merge([]*Result{rest, grpc}, []string{"rest.json", "grpc.json"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A merge's page lists its inputs and words its mixed settings: the load
// added up, both transports, the bytes each counts.
func TestAMergedPageListsItsInputs(t *testing.T) {
	m := mergeApart(t, 0)
	dom := renderRun(t, "merged", m)
	rows := regexp.MustCompile(`<tr data-input="([^"]+)"><td>[^<]*</td><td class="msg">([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>`).FindAllStringSubmatch(dom, -1)
	if len(rows) != 2 {
		t.Fatalf("%d input rows, want 2", len(rows))
	}
	for i, want := range [][]string{
		{"rest.json", m.MergedFrom[0].Target, "REST (epoll engine)", "open loop at 40 req/s", m.MergedFrom[0].StartedAt.UTC().Format("2006-01-02 15:04:05.000 UTC")},
		{"grpc.json", m.MergedFrom[1].Target, "gRPC", "open loop at 30 req/s", m.MergedFrom[1].StartedAt.UTC().Format("2006-01-02 15:04:05.000 UTC")},
	} {
		if got := rows[i][1:]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("input %d: %q, want %q", i, got, want)
		}
	}
	for _, want := range []string{"open loop at 70 req/s in all (40 + 30)", "REST and gRPC (REST: epoll engine)", "2 runs made at the same time (started within " + FormatDuration(m.MergedFrom[1].StartedAt.Sub(m.MergedFrom[0].StartedAt).Seconds()) + ")",
		"REST: the HTTP bytes", "gRPC: the request and response messages alone"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	for _, wrong := range []string{"MIXED", "mixed req/s", "at mixed"} {
		if strings.Contains(dom, wrong) {
			t.Errorf("the page says %q", wrong)
		}
	}
}

// merge --force of runs made hours apart: the summary and the page say how
// far apart, the per-second lines break over the gap, and only each run's
// own warm-up is shaded.
func TestAMergeOfRunsMadeApartSaysSoAndShowsTheGap(t *testing.T) {
	m := mergeApart(t, 3*time.Hour)
	var text strings.Builder
	WriteSummary(&text, m)
	if strings.Contains(text.String(), "same time") || !strings.Contains(text.String(), "3 h apart") {
		t.Fatalf("summary:\n%s", text.String())
	}
	c, _, err := chartOf("r0", m)
	if err != nil {
		t.Fatal(err)
	}
	// Between two points more than a second apart there is a null: uPlot
	// (spanGaps false) breaks every line there.
	breaks := 0
	for i := 1; i < len(c.Time); i++ {
		if c.Time[i]-c.Time[i-1] > 1.5 && c.OK[i-1] != nil && c.OK[i] != nil {
			t.Fatalf("the points at %v s and %v s are joined: no null between them", c.Time[i-1], c.Time[i])
		}
		if c.OK[i] == nil && c.P99Ms[i] == nil && c.Inflight[i] == nil {
			breaks++
		}
	}
	if breaks != 1 || !c.Gaps {
		t.Fatalf("%d breaks in the lines, want one between the runs", breaks)
	}
	if len(c.Warmup) != 2 {
		t.Fatalf("warm-up spans %v, want one per input", c.Warmup)
	}
	for i, span := range c.Warmup {
		in := m.MergedFrom[i]
		offset := in.StartedAt.Sub(m.StartedAt).Seconds()
		if math.Abs(span[0]-(in.Warmup.Start+offset)) > 1e-9 || span[1]-span[0] > 2 {
			t.Errorf("warm-up %d shaded %v, the input's is %+v at %v s", i, span, *in.Warmup, offset)
		}
	}
	// The compare page shades the same spans.
	rest, _ := readV2(t)
	var page bytes.Buffer
	if err := WriteCompareHTML(&page, m, rest, [2]string{"m.json", "rest.json"}, CompareOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	if got := regexp.MustCompile(`"warmup":\[(\[[^\]]*\],?)+\]`).FindString(page.String()); strings.Count(got, "[") != 3 {
		t.Errorf("compare page: base warm-up %s, want one span per input", got)
	}
	dom := renderRun(t, "apart", m)
	if !strings.Contains(dom, "made apart: their starts are 3 h apart and their steady phases do not overlap") {
		t.Error("the page does not say how far apart the runs were")
	}
	if testkit.DOMAttr(t, dom, "r0-latency-time", "data-points") == "0" {
		t.Error("no latency points")
	}
}

func TestDurationsCarryTheirUnit(t *testing.T) {
	for s, want := range map[float64]string{0: "0 s", 0.0000125: "12.5 us", 0.25: "250 ms", 0.0015: "1.5 ms", 10: "10 s", 3.04: "3.04 s",
		90: "1 min 30 s", 120: "2 min", 8820: "2 h 27 min", 3 * 3600: "3 h", -2: "-2 s"} {
		if got := FormatDuration(s); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", s, got, want)
		}
	}
	for _, c := range []struct {
		key  string
		v    any
		want string
	}{{"timeout", 10.0, "10 s"}, {"timeout", "10s", "10 s"}, {"warmup", 0.5, "500 ms"}, {"warmup", map[string]any{"requests": 500.0}, "requests 500"}, {"rate", 300.0, "300"}} {
		if got := FormatSettingOf(c.key, c.v); got != c.want {
			t.Errorf("FormatSettingOf(%q, %v) = %q, want %q", c.key, c.v, got, c.want)
		}
	}
	base, next := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 100, 100, 0)
	base.Config, next.Config = map[string]any{"timeout": 10.0}, map[string]any{"timeout": 5.0}
	notes := strings.Join(Compare(base, next, nil).Notes, "\n")
	if !strings.Contains(notes, "(base 10 s, new 5 s)") {
		t.Errorf("the --timeout note: %s", notes)
	}
	if rows := configRows(base.Config); len(rows) != 1 || rows[0].Value != "10 s" {
		t.Errorf("settings table: %v", rows)
	}
	if d := settingsThatDiffer(base, next); len(d) != 1 || d[0].Base != "10 s" || d[0].New != "5 s" {
		t.Errorf("settings that differ: %v", d)
	}
}

// Both pages divide the final partial second by its real length, keep a
// second within 5% of whole, and leave out one under 0.2 s.
func TestOneRuleForTheFinalPartialSecond(t *testing.T) {
	r := &Result{Series: []Second{{Second: 7, Requests: 100}, {Second: 8, Requests: 50}}}
	for end, want := range map[float64]float64{8.9985: 1, 8.96: 1, 8.5: 0.5, 8.2: 0.2, 8.15: 0, 9.5: 1} {
		r.Phases.Steady.End = end
		if got := secondLength(r, 8); math.Abs(got-want) > 1e-9 {
			t.Errorf("run ending at %v s: second 8 lasted %v, want %v", end, got, want)
		}
		if got := secondLength(r, 7); got != 1 {
			t.Errorf("run ending at %v s: second 7 lasted %v", end, got)
		}
	}
	r.Phases.Steady.End = 8.5
	c, _, err := chartOf("r0", &Result{Series: r.Series, Phases: r.Phases, Histogram: goldenResult(t).Histogram})
	if err != nil {
		t.Fatal(err)
	}
	base, next := *r, *r
	base.Histogram, next.Histogram = goldenResult(t).Histogram, goldenResult(t).Histogram
	var buf bytes.Buffer
	if err := WriteCompareHTML(&buf, &base, &next, [2]string{"a.json", "b.json"}, CompareOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"rps":\[([^\]]*)\]`).FindStringSubmatch(buf.String())
	if m == nil || len(c.OK) != 2 || *c.OK[1] != 100 {
		t.Fatalf("run page: %v; compare page rps %v", c.OK, m)
	}
	if !strings.HasSuffix(m[1], ",100,100") {
		t.Errorf("compare page rps [%s]: the half second's 50 requests are 100 req/s, as on the run page", m[1])
	}
}

// The distribution's log axis is labelled at 1, 2 and 5 of each decade.
func TestTheDistributionAxisIsLabelledBetweenDecades(t *testing.T) {
	dom := renderRun(t, "dist", goldenResult(t)) // latencies 1.01 to 11 ms
	labels := strings.Split(testkit.DOMAttr(t, dom, "r0-dist", "data-x-labels"), ",")
	between := 0
	for _, l := range labels {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil {
			t.Fatalf("label %q", l)
		}
		if e := math.Log10(v); math.Abs(e-math.Round(e)) > 1e-9 {
			between++
		}
	}
	if between < 2 {
		t.Errorf("distribution axis labels %v: want some between the decades", labels)
	}
}

// A failed sweep step is a red cross, whatever its step's colour, and no
// step's colour is red.
func TestFailedSweepStepsAreRedCrosses(t *testing.T) {
	var steps []StepResult
	for i, level := range []float64{100, 200, 300, 400, 500, 600} {
		r := goldenResult(t)
		r.ThroughputRPS, r.Config = level, map[string]any{"rate": level}
		r.Latency.P99 = 10 + 10*float64(i)
		steps = append(steps, StepResult{Level: level, Pass: i < 3, Attempts: 1, Result: r})
	}
	top := 300.0
	sw := &SweepResult{Version: 3, Kind: "sweep", Loop: "open", SLO: "p99<35ms", Stopped: "step 4 broke the SLO", Steps: steps, MaxPassing: &top}
	var buf bytes.Buffer
	if err := WriteSweepHTML(&buf, sw); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "sweep.html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	dom := testkit.PageDOM(t, page)
	markers := strings.Split(testkit.DOMAttr(t, dom, "sweep", "data-markers"), ";")
	if len(markers) != len(steps) {
		t.Fatalf("markers %v", markers)
	}
	for _, m := range markers {
		name, mark, _ := strings.Cut(m, "=")
		var level float64
		fmt.Sscanf(name, "rate %g", &level)
		pass := level <= 300
		if pass && (!strings.HasPrefix(mark, "dot:") || strings.HasSuffix(mark, lineColors["fail"])) {
			t.Errorf("passing %s drawn as %s", name, mark)
		}
		if !pass && mark != "cross:"+lineColors["fail"] {
			t.Errorf("failed %s drawn as %s, want a cross in %s", name, mark, lineColors["fail"])
		}
	}
	for i := range 12 {
		var hue int
		fmt.Sscanf(stepColor(i, 12), "hsl(%d,", &hue)
		if hue < 40 || hue > 320 {
			t.Errorf("step %d of 12 is hue %d: red is a failed step's", i, hue)
		}
	}
}

// Lines stand out from white and from either shading by 3:1 at least, and
// the profile window's shading is far in hue from every latency line.
func TestPageColoursAreDistinctAndReadable(t *testing.T) {
	lum := func(rgb [3]float64) float64 {
		var l [3]float64
		for i, c := range rgb {
			c /= 255
			if c <= 0.03928 {
				l[i] = c / 12.92
			} else {
				l[i] = math.Pow((c+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
	}
	parse := func(hex string) [3]float64 {
		var r, g, b int
		fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b)
		return [3]float64{float64(r), float64(g), float64(b)}
	}
	hue := func(c [3]float64) float64 {
		r, g, b := c[0]/255, c[1]/255, c[2]/255
		mx, mn := math.Max(r, math.Max(g, b)), math.Min(r, math.Min(g, b))
		var h float64
		switch {
		case mx == mn:
			return -1
		case mx == r:
			h = math.Mod((g-b)/(mx-mn), 6)
		case mx == g:
			h = (b-r)/(mx-mn) + 2
		default:
			h = (r-g)/(mx-mn) + 4
		}
		return math.Mod(60*h+360, 360)
	}
	backgrounds := map[string][3]float64{"white": {255, 255, 255}}
	for name, c := range shades {
		var bg [3]float64
		for i := range c {
			bg[i] = 255*(1-shadeAlpha) + float64(c[i])*shadeAlpha
		}
		backgrounds[name] = bg
	}
	for name, hex := range lineColors {
		for bgName, bg := range backgrounds {
			a, b := lum(parse(hex)), lum(bg)
			if ratio := (math.Max(a, b) + 0.05) / (math.Min(a, b) + 0.05); ratio < 3 {
				t.Errorf("%s (%s) on %s: contrast %.2f, want 3 at least", name, hex, bgName, ratio)
			}
		}
	}
	w := shades["window"]
	windowHue := hue([3]float64{float64(w[0]), float64(w[1]), float64(w[2])})
	for _, name := range []string{"p50", "p90", "p99", "max"} {
		d := math.Abs(hue(parse(lineColors[name])) - windowHue)
		if d = math.Min(d, 360-d); d < 60 {
			t.Errorf("%s (%s) is %.0f degrees from the profile window's shading", name, lineColors[name], d)
		}
	}
}

func TestErrorLimitsAndEmptyLimitsAreRefusedClearly(t *testing.T) {
	for spec, want := range map[string]string{
		"errors=2.5":       "an error count is a whole number (errors=2); a rate of the requests takes %, e.g. errors=2.5%",
		"p99=10%,":         `report.ParseLimits "p99=10%,": limit 2 of 2 is empty`,
		"p99=10%,,rps=5%":  "limit 2 of 3 is empty",
		",p99=10%":         "limit 1 of 2 is empty",
		"errors=2.5%,p99=": `"p99=": a latency limit needs % or ms`,
	} {
		_, err := ParseLimits(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--max %q: %v, want %q", spec, err, want)
		}
	}
	for _, spec := range []string{"errors=2", "errors=2.5%", "errors=0"} {
		if _, err := ParseLimits(spec); err != nil {
			t.Errorf("--max %q: %v", spec, err)
		}
	}
}

// A run compared with itself changes nothing: every limited metric passes
// and none is called noisy.
func TestASelfCompareIsAPassWithoutNoise(t *testing.T) {
	steady := func(i int) float64 { return 99 + float64(i%3) }
	r := withSeconds(crafted(t, 20000, 100, 1000, 0), 20, 1000, steady)
	for i := range r.Series {
		r.Series[i].Requests = int64(990 + 7*(i%4)) // rps wanders from second to second
	}
	limits, err := ParseLimits("p99=10%,p50=10%,rps=5%,errors=0")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range [][]Limit{limits, nil} {
		c := Compare(r, r, l)
		var text strings.Builder
		c.Write(&text)
		if strings.Contains(text.String(), "noisy") || len(c.Noisy) != 0 {
			t.Errorf("self-compare (limits %v) calls something noisy:\n%s", l, text.String())
		}
		for _, row := range c.Rows {
			if row.Noisy != "" || (row.Limit != nil && row.Verdict != VerdictPass) || (row.Limit == nil && row.Verdict != VerdictSame) {
				t.Errorf("%s: verdict %s, noise %q", row.Metric, row.Verdict, row.Noisy)
			}
		}
	}
}

func TestASweepOfFailuresIsNoSuccess(t *testing.T) {
	failed := goldenResult(t)
	failed.Errors = map[string]int64{"http_503": failed.Requests}
	ok := goldenResult(t)
	if !(&SweepResult{Steps: []StepResult{{Result: failed}, {Result: failed}}}).NoSuccess() {
		t.Error("a sweep of failed steps has a success")
	}
	if (&SweepResult{Steps: []StepResult{{Result: failed}, {Result: ok}}}).NoSuccess() {
		t.Error("a sweep with a passing step has no success")
	}
	if (&SweepResult{Steps: []StepResult{{Result: nil}}}).NoSuccess() {
		t.Error("a sweep that ran no step says no request succeeded")
	}
}

// What a version 2 input does not record stays unknown through a merge
// and through the merged file, and a version 2 sweep's steps say it too.
func TestUnknownSeriesFieldsSurviveMergesAndSweeps(t *testing.T) {
	m := mergeApart(t, 0)
	// Two version 2 inputs keep no per-second histograms: no merged
	// second has percentiles.
	want := strings.Join([]string{fieldP50, fieldP90, fieldP99, fieldSent, fieldInflight, fieldBytesOut, fieldBytesIn}, ",")
	if got := strings.Join(m.SeriesUnknown, ","); got != want {
		t.Fatalf("merged series_unknown %q, want %q", got, want)
	}
	path := filepath.Join(t.TempDir(), "m.json")
	if err := m.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(back.SeriesUnknown, ","); got != want {
		t.Fatalf("read back: series_unknown %q", got)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "v2", "rest.json"))
	if err != nil {
		t.Fatal(err)
	}
	sweep := filepath.Join(t.TempDir(), "sweep.json")
	os.WriteFile(sweep, []byte(`{"version": 2, "tool": "loadprof 0.1.0", "kind": "sweep", "loop": "open", "steps": [{"level": 40, "pass": true, "result": `+string(raw)+`}]}`), 0o644)
	sw, err := ReadSweep(sweep)
	if err != nil {
		t.Fatal(err)
	}
	if got := sw.Steps[0].Result.SeriesUnknown; len(got) != 5 {
		t.Fatalf("a version 2 sweep's step: series_unknown %v", got)
	}
}

// A merge moved each input's seconds by its start rounded to a whole
// second, so a merged second is as long as its inputs' seconds there: a
// run that started 0.65 s after the other ends its whole last second where
// the merge's exact end says 0.65 s, and a gap between runs made apart
// (merge --force) is not a second of either.
func TestAMergedSecondLastsAsLongAsItsInputsSeconds(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	r := &Result{StartedAt: t0, MergedFrom: []MergedInput{
		{StartedAt: t0, Steady: &Span{Start: 0, End: 3.02}},
		{StartedAt: t0.Add(650 * time.Millisecond), Steady: &Span{Start: 0, End: 3.0}},
	}}
	r.Phases.Steady.End = 3.65 // the later run's end on the merged clock
	for second, want := range map[int]float64{0: 1, 2: 1, 3: 1, 4: 0} {
		if got := secondLength(r, second); got != want {
			t.Errorf("second %d lasted %v, want %v", second, got, want)
		}
	}
	apart := &Result{StartedAt: t0, MergedFrom: []MergedInput{
		{StartedAt: t0, Steady: &Span{Start: 0, End: 7.0018}},
		{StartedAt: t0.Add(200 * time.Second), Steady: &Span{Start: 0, End: 3.5}},
	}}
	apart.Phases.Steady.End = 203.5
	for second, want := range map[int]float64{6: 1, 7: 0, 100: 0, 200: 1, 203: 0.5} {
		if got := secondLength(apart, second); math.Abs(got-want) > 1e-9 {
			t.Errorf("runs made apart: second %d lasted %v, want %v", second, got, want)
		}
	}
}

// An open loop's page draws the planned rate flat, beside what was sent:
// requests never sent or late make sent fall below it, which a line of
// "intended sends" counted from the sends themselves could not show.
func TestTheOfferedRateIsThePlanNotTheSends(t *testing.T) {
	r := goldenResult(t)
	r.Loop, r.Rate = "open", 600
	for i := range r.Series {
		r.Series[i].Sent = 279 // waiting for a slot, never sent
	}
	c, _, err := chartOf("r0", r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Offered != 600 || c.Sent[0] == nil || *c.Sent[0] != 279 {
		t.Fatalf("offered %v, sent %v", c.Offered, c.Sent[0])
	}
	r.Loop, r.Rate, r.Concurrency = "closed", 0, 8
	if c, _, _ := chartOf("r0", r); c.Offered != 0 {
		t.Fatalf("a closed loop offered %v", c.Offered)
	}
}

// The window's settings of a run that opened none are not a difference
// worth a row: the note says one run had a window.
func TestProfileSettingsOfARunWithoutAWindowAreNotCompared(t *testing.T) {
	base, next := goldenResult(t), goldenResult(t)
	base.Config = map[string]any{"profile-delay": 0.0, "profile-duration": 4.0, "timeout": 10.0}
	next.Config = map[string]any{"profile-delay": 2.0, "profile-duration": 2.0, "timeout": 10.0}
	base.Profile, next.Profile = nil, nil
	if d := settingsThatDiffer(base, next); len(d) != 0 {
		t.Errorf("settings that differ without windows: %v", d)
	}
	base.Profile, next.Profile = &ProfileReport{}, &ProfileReport{}
	if d := settingsThatDiffer(base, next); len(d) != 2 {
		t.Errorf("settings that differ with windows: %v", d)
	}
}
