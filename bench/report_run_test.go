package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

func TestHTMLReportRendersInChromiumWithTheRunsData(t *testing.T) {
	testkit.Chromium(t)
	// Some answers are 503s and some come after the 40 ms timeout: two
	// error classes.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: 44 * time.Millisecond, WhileProfiling: 5 * time.Millisecond, ErrorRate: 0.05, ErrorStatus: 503}})
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	ran, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 40 * time.Millisecond,
		Plan:    load.Plan{Rate: 100, WarmupDuration: time.Second, Duration: 3 * time.Second, MaxInflight: 50},
		Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{Duration: time.Second, LogDir: t.TempDir()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, ran, out)
	res, err := report.ReadResult(out) // what result.json says, not what the run kept in memory
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
	if err := report.WriteHTML(&buf, []*report.Result{res}, []string{"run.json"}, report.ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, buf.Bytes(), 0o644)
	if strings.Contains(buf.String(), "<script src=") || strings.Contains(buf.String(), "<link ") {
		t.Fatal("the report loads something from outside itself")
	}
	dom := testkit.PageDOM(t, page)
	// The latency table: all, window and outside as result.json has them.
	for _, s := range []struct {
		key   string
		n     int64
		stats report.Stats
	}{{"all", res.Requests, res.Latency}, {"window", res.Window.Requests, res.Window.Latency}, {"outside", res.Outside.Requests, res.Outside.Latency}} {
		cells := testkit.DOMCells(dom, "data-slice", s.key)
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
		if got := testkit.DOMCells(dom, "data-class", class)["count"]; got != strconv.FormatInt(n, 10) {
			t.Errorf("error class %s: the page shows %q, result.json has %d", class, got, n)
		}
	}
	// Charts: four rate lines a second (offered, due, completed, errors),
	// four latency lines, and curves that stop where the sample does.
	if got, want := testkit.DOMAttr(t, dom, "r0-rate", "data-points"), strconv.Itoa(4*len(res.Series)); got != want && got != strconv.Itoa(4*(len(res.Series)-1)) {
		t.Errorf("rate chart has %s points, the run has %d seconds", got, len(res.Series))
	}
	if testkit.DOMAttr(t, dom, "r0-percentiles", "data-series") != "3" || testkit.DOMAttr(t, dom, "r0-percentiles", "data-x-max") != strconv.FormatInt(res.Latency.Count, 10) {
		t.Errorf("percentile chart: %s curves ending at %s; want all, window and outside ending at %d", testkit.DOMAttr(t, dom, "r0-percentiles", "data-series"),
			testkit.DOMAttr(t, dom, "r0-percentiles", "data-x-max"), res.Latency.Count)
	}
	if labels := testkit.DOMAttr(t, dom, "r0-percentiles", "data-x-labels"); !strings.HasPrefix(labels, "0%,90%,99%") || strings.Contains(labels, "99.999%") {
		t.Errorf("percentile axis labels %q for %d requests", labels, res.Latency.Count)
	}
	// Rates and requests in flight on axes from zero: 99 against 101 req/s
	// must not fill the chart's height.
	for _, id := range []string{"r0-rate", "r0-inflight"} {
		if yr := testkit.DOMAttr(t, dom, id, "data-y-range"); !strings.HasPrefix(yr, "0,") {
			t.Errorf("#%s: y axis %s, want it from 0", id, yr)
		}
	}
	for _, id := range []string{"r0-inflight", "r0-bytes", "r0-latency-time", "r0-dist"} {
		if testkit.DOMAttr(t, dom, id, "data-points") == "0" {
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
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), IntervalLog: hlogTo(hlog),
		Plan: load.Plan{Rate: 300, WarmupDuration: 500 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, res, out)
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
	// warm-up; a second's point in the series is its steady interval, or
	// its warm-up one when it has no steady one, with the same
	// percentiles.
	bySecond := map[int][]int{}
	var steady, warm int64
	for i, in := range intervals {
		switch in.Tag {
		case "":
			steady += in.Count
		case report.HlogWarmupTag:
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
		point := bySecond[i][0]
		for _, j := range bySecond[i] {
			if intervals[j].Tag == "" {
				point = j
			}
		}
		if in := intervals[point]; in.Count != s.Requests || in.P50 != s.P50Us || in.P99 != s.P99Us || in.Max != s.MaxUs {
			t.Fatalf("second %d: hdr-histogram-js reads %+v, loadprof printed %+v", i, in, s)
		}
	}
}
