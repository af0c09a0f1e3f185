package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenResult is a result with fixed numbers, for the template's golden file.
func goldenResult(t *testing.T) *Result {
	h := load.NewHistogram()
	for i := int64(1); i <= 1000; i++ {
		h.RecordValue(1000 + i*10)
	}
	enc, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	win, out := load.NewHistogram(), load.NewHistogram()
	for i := int64(1); i <= 1000; i++ {
		if i%4 == 0 {
			win.RecordValue(1000 + i*10)
		} else {
			out.RecordValue(1000 + i*10)
		}
	}
	slice := func(h *hdrhistogram.Histogram, errs map[string]int64) *Slice {
		enc, err := EncodeHistogram(h)
		if err != nil {
			t.Fatal(err)
		}
		return &Slice{Requests: h.TotalCount(), Errors: errs, Latency: StatsOf(h), LatencyOK: StatsOf(h), Histogram: enc}
	}
	lag := Stats{Count: 1250, P50: 0.05, P99: 0.4, Max: 12.5}
	return &Result{
		Version: 1, Tool: "loadprof test", Target: "http://127.0.0.1:8501/v1/models/m:predict", Transport: "rest",
		StartedAt: time.Date(2026, 11, 24, 18, 29, 58, 0, time.UTC),
		Loop:      "open", LatencyFrom: "intended_send", Requests: 1000, ThroughputRPS: 250, SuccessRPS: 249,
		Errors: map[string]int64{"http_503": 1}, ErrorSamples: map[string]string{"http_503": "http_503: {\"error\": \"overloaded\"}"},
		Latency: StatsOf(h), LatencyOK: StatsOf(h), Histogram: enc,
		Window: slice(win, map[string]int64{}), Outside: slice(out, map[string]int64{"http_503": 1}),
		Config: map[string]any{"rate": "250", "header": []string{"Authorization: <redacted>"}},
		Phases: Phases{Warmup: Phase{Start: 0, End: 1, Requests: 250, Errors: map[string]int64{"timeout": 2}}, Steady: Phase{Start: 1, End: 4.5, Requests: 1000}},
		Series: []load.Second{{Second: 0, Requests: 250, P50Us: 5000, P90Us: 8000, P99Us: 9000, MaxUs: 9500, Sent: 250, Inflight: 1.5, BytesSent: 45000, BytesReceived: 105000},
			{Second: 1, Requests: 250, P50Us: 6000, P90Us: 9000, P99Us: 11000, MaxUs: 12000, Sent: 250, Inflight: 1.6, BytesSent: 45000, BytesReceived: 105000},
			{Second: 2, Requests: 249, Errors: 1, P50Us: 6000, P90Us: 9000, P99Us: 11000, MaxUs: 30000, Sent: 250, Inflight: 1.6, BytesSent: 45000, BytesReceived: 105000},
			{Second: 3, Requests: 250, P50Us: 6000, P90Us: 8000, P99Us: 10000, MaxUs: 10500, Sent: 125, Inflight: 1.5, BytesSent: 22500, BytesReceived: 52500},
			{Second: 4, Requests: 126, P50Us: 6000, P90Us: 8000, P99Us: 10000, MaxUs: 10500, Sent: 0, Inflight: 0.7, BytesSent: 0, BytesReceived: 0}},
		Client: ClientStats{SendLag: &lag, MaxSendLagMs: 12.5, MaxFreeSendLagMs: 12.5, PeakInflight: 7, Engine: "epoll"},
		Profile: &ProfileReport{Result: &profile.Result{Address: "127.0.0.1:8500", Run: "2026_11_24_18_30_00", LogDir: "tb", Saved: profile.SavedLocal,
			Files: []string{"tb/plugins/profile/2026_11_24_18_30_00/127.0.0.1_8500.xplane.pb"}},
			WindowStartS: 2, WindowEndS: 3, TopOps: []profile.Op{{Name: "dense/MatMul", Type: "MatMul", Plane: "/host:CPU", Count: 10, TotalMs: 4, SelfMs: 3, Share: 0.3}}},
	}
}

func TestHTMLTemplateGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, []*Result{goldenResult(t)}, []string{"base.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.html")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		os.WriteFile(filepath.Join(t.TempDir(), "got.html"), buf.Bytes(), 0o644)
		t.Fatalf("the report differs from %s (after checking the change: go test ./bench -run Golden -args -update)", golden)
	}
}

func chromium(t *testing.T) string {
	if p := os.Getenv("LOADPROF_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no chromium (scripts/test.sh installs Debian's chromium and sets LOADPROF_CHROMIUM)")
	return ""
}

func headless(t *testing.T, bin string, args ...string) []byte {
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(), "--window-size=1000,2400"}
	cmd := exec.Command(bin, append(base, args...)...)
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return out
}

// pageDOM renders page in headless Chromium and returns the DOM after its
// scripts ran, failing on any script error; it saves a screenshot beside
// the page (LOADPROF_SCREENSHOTS, when set, names a directory to keep it).
func pageDOM(t *testing.T, page string) string {
	t.Helper()
	bin := chromium(t)
	dom := string(headless(t, bin, "--dump-dom", "file://"+page))
	if !strings.Contains(dom, `data-errors=""`) || !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page reported script errors: %s", regexp.MustCompile(`data-errors="[^"]*"`).FindString(dom))
	}
	shot := strings.TrimSuffix(page, ".html") + ".png"
	if dir := os.Getenv("LOADPROF_SCREENSHOTS"); dir != "" {
		shot = filepath.Join(dir, filepath.Base(shot))
	}
	headless(t, bin, "--screenshot="+shot, "--window-size=1100,6000", "file://"+page)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	return dom
}

// domAttr returns attribute name of the element with id in dom.
func domAttr(t *testing.T, dom, id, name string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*` + name + `="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no %s on #%s in the rendered page", name, id)
	}
	return m[1]
}

// domCells returns the data-stat cells of the row whose attr is value.
func domCells(dom, attr, value string) map[string]string {
	row := regexp.MustCompile(`<tr ` + attr + `="` + regexp.QuoteMeta(value) + `"[^>]*>(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil {
		return nil
	}
	cells := map[string]string{}
	for _, m := range regexp.MustCompile(`data-stat="([^"]+)">([^<]*)<`).FindAllStringSubmatch(row[1], -1) {
		cells[m[1]] = m[2]
	}
	return cells
}

func TestHTMLReportRendersInChromiumWithTheRunsData(t *testing.T) {
	chromium(t)
	// Some answers are 503s and some come after the 40 ms timeout: two
	// error classes.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: 44 * time.Millisecond, WhileProfiling: 5 * time.Millisecond, ErrorRate: 0.05, ErrorStatus: 503}})
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	_, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), OutPath: out, Timeout: 40 * time.Millisecond,
		Plan:    load.Plan{Rate: 100, WarmupDuration: time.Second, Duration: 3 * time.Second, MaxInflight: 50},
		Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{Duration: time.Second, LogDir: t.TempDir()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadResult(out) // what result.json says, not what the run kept in memory
	if err != nil {
		t.Fatal(err)
	}
	var sent, received int64
	for _, s := range res.Series {
		sent, received = sent+s.BytesSent, received+s.BytesReceived
	}
	if sent == 0 || received == 0 {
		t.Fatalf("result.json's series has %d bytes sent and %d received", sent, received)
	}
	if res.Window == nil || res.Outside == nil || len(res.Errors) < 2 {
		t.Fatalf("the run needs a window, outside and two error classes: window %v, errors %v", res.Window != nil, res.Errors)
	}
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, []*Result{res}, []string{"run.json"}, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, buf.Bytes(), 0o644)
	if strings.Contains(buf.String(), "<script src=") || strings.Contains(buf.String(), "<link ") {
		t.Fatal("the report loads something from outside itself")
	}
	dom := pageDOM(t, page)
	// The latency table: all, window and outside as result.json has them.
	for _, s := range []struct {
		key   string
		n     int64
		stats Stats
	}{{"all", res.Requests, res.Latency}, {"window", res.Window.Requests, res.Window.Latency}, {"outside", res.Outside.Requests, res.Outside.Latency}} {
		cells := domCells(dom, "data-slice", s.key)
		want := map[string]string{"requests": strconv.FormatInt(s.n, 10)}
		for name, v := range map[string]float64{"min": s.stats.Min, "mean": s.stats.Mean, "p50": s.stats.P50, "p90": s.stats.P90, "p95": s.stats.P95,
			"p99": s.stats.P99, "p999": s.stats.P999, "max": s.stats.Max, "stddev": s.stats.Stddev} {
			want[name] = strconv.FormatFloat(v, 'f', 3, 64)
		}
		for name, w := range want {
			if cells[name] != w {
				t.Errorf("%s %s: the page shows %q, result.json has %s", s.key, name, cells[name], w)
			}
		}
	}
	// The error table: a row for each class, with its count.
	for class, n := range res.Errors {
		if got := domCells(dom, "data-class", class)["count"]; got != strconv.FormatInt(n, 10) {
			t.Errorf("error class %s: the page shows %q, result.json has %d", class, got, n)
		}
	}
	// Charts: three rate lines a second, four latency lines, and curves
	// that stop where the sample does.
	if got, want := domAttr(t, dom, "r0-rate", "data-points"), strconv.Itoa(3*len(res.Series)); got != want && got != strconv.Itoa(3*(len(res.Series)-1)) {
		t.Errorf("rate chart has %s points, the run has %d seconds", got, len(res.Series))
	}
	if domAttr(t, dom, "r0-percentiles", "data-series") != "3" || domAttr(t, dom, "r0-percentiles", "data-x-max") != strconv.FormatInt(res.Latency.Count, 10) {
		t.Errorf("percentile chart: %s curves ending at %s; want all, window and outside ending at %d", domAttr(t, dom, "r0-percentiles", "data-series"),
			domAttr(t, dom, "r0-percentiles", "data-x-max"), res.Latency.Count)
	}
	if labels := domAttr(t, dom, "r0-percentiles", "data-x-labels"); !strings.HasPrefix(labels, "0%,90%,99%") || strings.Contains(labels, "99.999%") {
		t.Errorf("percentile axis labels %q for %d requests", labels, res.Latency.Count)
	}
	// Rates and requests in flight on axes from zero: 99 against 101 req/s
	// must not fill the chart's height.
	for _, id := range []string{"r0-rate", "r0-inflight"} {
		if yr := domAttr(t, dom, id, "data-y-range"); !strings.HasPrefix(yr, "0,") {
			t.Errorf("#%s: y axis %s, want it from 0", id, yr)
		}
	}
	for _, id := range []string{"r0-inflight", "r0-bytes", "r0-latency-time", "r0-dist"} {
		if domAttr(t, dom, id, "data-points") == "0" {
			t.Errorf("#%s is empty", id)
		}
	}
	for _, want := range []string{res.Profile.Files[0], "started", "target host", "send lag behind the schedule"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
}

func TestHistogramsDecodeInHdrHistogramJS(t *testing.T) {
	modules := os.Getenv("LOADPROF_NODE_MODULES")
	if modules == "" {
		t.Skip("LOADPROF_NODE_MODULES is not set (scripts/test.sh installs hdr-histogram-js and sets it)")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "node", "hdrdecode.js")
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: 3 * time.Millisecond}})
	dir := t.TempDir()
	out, hlog := filepath.Join(dir, "result.json"), filepath.Join(dir, "run.hlog")
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), OutPath: out, HlogPath: hlog,
		Plan: load.Plan{Rate: 300, WarmupDuration: 500 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	var intervals []struct {
		Tag                  string
		StartMs              float64 `json:"start_ms"`
		Count, P50, P99, Max int64
	}
	decode := func(kind, path string) map[string]float64 {
		cmd := exec.Command("node", script, kind, path)
		cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("node %s: %v", kind, err)
		}
		m := map[string]float64{}
		var doc map[string]json.RawMessage
		json.Unmarshal(raw, &doc)
		for k, v := range doc {
			if k == "each" {
				json.Unmarshal(v, &intervals)
				continue
			}
			var f float64
			json.Unmarshal(v, &f)
			m[k] = f
		}
		return m
	}
	js := decode("result", out)
	us := func(ms float64) float64 { return math.Round(ms * 1000) }
	l := res.Latency
	for name, pair := range map[string][2]float64{
		"count": {js["count"], float64(l.Count)}, "min": {js["min"], us(l.Min)}, "max": {js["max"], us(l.Max)},
		"p50": {js["p50"], us(l.P50)}, "p90": {js["p90"], us(l.P90)}, "p99": {js["p99"], us(l.P99)}, "p999": {js["p999"], us(l.P999)},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: hdr-histogram-js reads %v, loadprof printed %v", name, pair[0], pair[1])
		}
	}
	jl := decode("hlog", hlog)
	if jl["count"] != float64(res.Requests+res.Phases.Warmup.Requests) || jl["intervals"] < 3 {
		t.Fatalf("hlog as hdr-histogram-js reads it: %v; the run had %d requests, %d seconds", jl, res.Requests+res.Phases.Warmup.Requests, len(res.Series))
	}
	// The untagged intervals are the steady phase, the tagged ones the
	// warm-up; each second's intervals together are the per-second series,
	// and a second of one phase only gives the same percentiles.
	bySecond := map[int][]int{}
	var steady, warm int64
	for i, in := range intervals {
		switch in.Tag {
		case "":
			steady += in.Count
		case HlogWarmupTag:
			warm += in.Count
		default:
			t.Fatalf("interval %d: tag %q", i, in.Tag)
		}
		sec := int(math.Round(in.StartMs-float64(res.StartedAt.UnixMilli())) / 1000)
		bySecond[sec] = append(bySecond[sec], i)
	}
	if steady != res.Requests || warm != res.Phases.Warmup.Requests {
		t.Fatalf("hdr-histogram-js reads %d steady and %d warm-up values; the run had %d and %d", steady, warm, res.Requests, res.Phases.Warmup.Requests)
	}
	if len(bySecond) != len(res.Series) {
		t.Fatalf("the log has %d seconds, the series %d", len(bySecond), len(res.Series))
	}
	for i, s := range res.Series {
		var n int64
		for _, j := range bySecond[i] {
			n += intervals[j].Count
		}
		if n != s.Requests {
			t.Fatalf("second %d: hdr-histogram-js reads %d values, the series %d", i, n, s.Requests)
		}
		if in := intervals[bySecond[i][0]]; len(bySecond[i]) == 1 && (in.P50 != s.P50Us || in.P99 != s.P99Us || in.Max != s.MaxUs) {
			t.Fatalf("second %d: hdr-histogram-js reads %+v, loadprof printed %+v", i, in, s)
		}
	}
}

func TestSweepReportShowsTheSLOAndTheHighestPassingStep(t *testing.T) {
	var steps []StepResult
	for i, level := range []float64{100, 200, 300, 400, 500, 600, 700, 800, 900} {
		r := goldenResult(t)
		r.ThroughputRPS = level * 0.99
		r.Config = map[string]any{"rate": fmt.Sprint(level), "duration": "10s", "url": r.Target}
		r.Latency.P50, r.Latency.P99 = 2+float64(i)/10, 10+5*float64(i*i)
		r.Latency.P90, r.Latency.Max = r.Latency.P99/2, r.Latency.P99*1.3
		steps = append(steps, StepResult{Level: level, Pass: r.Latency.P99 < 50, Attempts: 1, Result: r})
	}
	steps[3].Unstable, steps[3].Attempts = "p99 20.0 vs 30.0 ms between halves", 2
	highest := 300.0
	sw := &SweepResult{Version: 2, Kind: "sweep", Loop: "open", SLO: "p99<50ms", Stopped: "step 4 (400) broke the SLO",
		Config: map[string]any{"duration": "10s"}, Steps: steps, MaxPassing: &highest}
	var buf bytes.Buffer
	if err := WriteSweepHTML(&buf, sw); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "sweep.html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	dom := pageDOM(t, page)
	if got := domAttr(t, dom, "sweep", "data-slo"); got != "p99&lt;50ms" {
		t.Errorf("SLO lines %q", got)
	}
	if got := domAttr(t, dom, "sweep", "data-highest"); got != "rate 300" {
		t.Errorf("highest passing step marked %q", got)
	}
	if got := domAttr(t, dom, "sweep", "data-points"); got != strconv.Itoa(2*len(steps)) {
		t.Errorf("sweep chart has %s points for %d steps", got, len(steps))
	}
	if !regexp.MustCompile(`<tr data-level="300" data-pass="true" class="highest"`).MatchString(dom) || !strings.Contains(dom, `data-max-passing="300"`) {
		t.Error("the step table does not mark step 300 as the highest passing")
	}
	if n := strings.Count(dom, `data-pass="false"`); n != 6 {
		t.Errorf("%d failing steps in the table, want 6", n)
	}
	if n := strings.Count(dom, `data-unstable="true"`); n != 1 {
		t.Errorf("%d unstable flags, want 1", n)
	}
	// Shared settings once, and per step only the rate.
	if n := strings.Count(dom, "<td>duration</td>"); n != 1 {
		t.Errorf("duration is shown %d times, want once among the shared settings", n)
	}
	if !strings.Contains(dom, "<code>rate=900</code>") {
		t.Error("the step table does not say what differs per step")
	}
	// Every step has its own colour.
	colors := map[string]bool{}
	for _, m := range regexp.MustCompile(`class="swatch" style="background: ([^"]+)"`).FindAllStringSubmatch(dom, -1) {
		colors[m[1]] = true
	}
	if len(colors) != len(steps) {
		t.Errorf("%d colours for %d steps", len(colors), len(steps))
	}
}

func TestProgressLineKeepsWarmupApartAndShowsTheWindow(t *testing.T) {
	plan := load.Plan{WarmupDuration: 10 * time.Second, Duration: 60 * time.Second}
	warm := progressLine(load.Progress{Phase: load.Warmup, WarmupRequests: 500, LastSecond: load.Second{Requests: 200}}, 3*time.Second, plan)
	if !strings.Contains(warm, "[   3s/70s] warm-up       500 requests") || strings.Contains(warm, "steady") {
		t.Fatalf("warm-up line %q", warm)
	}
	steady := progressLine(load.Progress{Phase: load.Steady, WarmupRequests: 2000, SteadyRequests: 1200, SteadyErrors: 3, SteadyP99Us: 12500, Window: true}, 16*time.Second, plan)
	if !strings.Contains(steady, "steady       1200 requests      3 errors  p99 12.50 ms") || !strings.Contains(steady, "[profile window open]") {
		t.Fatalf("steady line %q", steady)
	}
	byCount := progressLine(load.Progress{}, time.Second, load.Plan{WarmupRequests: 100, Duration: time.Minute})
	if strings.Contains(byCount, "s/") {
		t.Fatalf("a warm-up by count has no known total: %q", byCount)
	}
}
