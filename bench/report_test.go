package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
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
	return &Result{
		Version: 1, Tool: "loadprof test", Target: "http://127.0.0.1:8501/v1/models/m:predict", Transport: "rest",
		Loop: "open", LatencyFrom: "intended_send", Requests: 1000, ThroughputRPS: 250, SuccessRPS: 249,
		Errors: map[string]int64{"http_503": 1}, Latency: StatsOf(h), Histogram: enc,
		Config: map[string]any{"rate": "250", "header": []string{"Authorization: <redacted>"}},
		Phases: Phases{Warmup: Phase{Start: 0, End: 1, Requests: 250}, Steady: Phase{Start: 1, End: 5, Requests: 1000}},
		Series: []load.Second{{Second: 0, Requests: 250, P50Us: 5000, P99Us: 9000}, {Second: 1, Requests: 250, P50Us: 6000, P99Us: 11000},
			{Second: 2, Requests: 249, Errors: 1, P50Us: 6000, P99Us: 11000}, {Second: 3, Requests: 250, P50Us: 6000, P99Us: 10000}},
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

func TestHTMLReportRendersInChromiumWithTheRunsData(t *testing.T) {
	bin := chromium(t)
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, WhileProfiling: 5 * time.Millisecond}})
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan:    load.Plan{Rate: 100, WarmupDuration: time.Second, Duration: 2 * time.Second, MaxInflight: 50},
		Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{Duration: time.Second, LogDir: t.TempDir()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	other := goldenResult(t) // a second run on the same charts
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, []*Result{res, other}, []string{"run.json", "base.json"}, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, buf.Bytes(), 0o644)
	if strings.Contains(buf.String(), "<script src=") || strings.Contains(buf.String(), "<link ") {
		t.Fatal("the report loads something from outside itself")
	}
	dom := string(headless(t, bin, "--dump-dom", "file://"+page))
	attr := func(id, name string) string {
		m := regexp.MustCompile(`id="` + id + `"[^>]*` + name + `="([^"]*)"`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("no %s on #%s in the rendered page", name, id)
		}
		return m[1]
	}
	if !strings.Contains(dom, `data-errors=""`) || !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page reported script errors: %s", regexp.MustCompile(`data-errors="[^"]*"`).FindString(dom))
	}
	if attr("percentiles", "data-series") != "2" || attr("percentiles", "data-points") != strconv.Itoa(2*len(percentileAxis())) {
		t.Fatalf("percentile chart: %s series, %s points", attr("percentiles", "data-series"), attr("percentiles", "data-points"))
	}
	if got, want := attr("throughput", "data-points"), strconv.Itoa(len(res.Series)+len(other.Series)); got != want {
		t.Fatalf("throughput chart has %s points, the runs have %s seconds", got, want)
	}
	if attr("percentiles", "data-x-labels") != "0%,90%,99%,99.9%,99.99%,99.999%,99.9999%" {
		t.Fatalf("percentile axis labels %q", attr("percentiles", "data-x-labels"))
	}
	for _, want := range []string{"dense/MatMul", res.Profile.Files[0], "serving_default/dense/MatMul"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	shot := filepath.Join(dir, "report.png")
	headless(t, bin, "--screenshot="+shot, "file://"+page)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
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

func TestSweepReportPlotsLatencyAgainstThroughput(t *testing.T) {
	bin := chromium(t)
	a, b := goldenResult(t), goldenResult(t)
	b.ThroughputRPS = 500
	sw := &SweepResult{Version: 1, Kind: "sweep", Loop: "open", SLO: "p99<50ms", Stopped: "every step passed",
		Steps: []StepResult{{Level: 250, Pass: true, Result: a}, {Level: 500, Pass: true, Result: b}}}
	var buf bytes.Buffer
	if err := WriteSweepHTML(&buf, sw); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "sweep.html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	dom := string(headless(t, bin, "--dump-dom", "file://"+page))
	if !strings.Contains(dom, `data-errors=""`) || !regexp.MustCompile(`id="sweep"[^>]*data-points="4"`).MatchString(dom) || !strings.Contains(dom, "rate_500") {
		t.Fatalf("sweep page: %s", regexp.MustCompile(`data-errors="[^"]*"|id="sweep"[^>]*`).FindAllString(dom, -1))
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
