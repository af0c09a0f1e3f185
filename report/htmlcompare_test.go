package report

import (
	"bytes"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
)

// comparePair is a base and a new run that differ the ways the compare
// page has to show: p99 up steadily (regressed), p50 up within the runs'
// wandering p50 (noisy), rps within its limit, the new run at another
// rate, with a lagging client and a profile window the base did not have.
func comparePair(t *testing.T) (*Result, *Result) {
	t.Helper()
	steady := func(i int) float64 { return 99 + float64(i%2) }
	base := withSeconds(crafted(t, 20000, 100, 1000, 0), 20, 1000, steady)
	next := withSeconds(crafted(t, 20000, 125, 990, 4), 20, 990, func(i int) float64 { return 124 + float64(i%2) })
	// p50 per second wanders 20..80 ms in both runs.
	for i := range base.Series {
		base.Series[i].P50Us = int64(20000 + 60000*((i*3)%7)/6)
		next.Series[i].P50Us = int64(20000 + 60000*((i*5)%7)/6)
	}
	for i, r := range []*Result{base, next} {
		r.Version, r.Tool, r.Loop, r.Transport = 2, "loadprof test", "open", "rest"
		r.StartedAt = time.Date(2026, 11, 25, 10, i, 0, 0, time.UTC)
		r.Config = map[string]any{"rate": "1000", "timeout": "10s", "duration": "20s"}
	}
	next.Config["rate"] = "990"
	base.Config["out"], next.Config["out"] = "base.json", "new.json" // differ in every pair of runs
	base.Client.MaxFreeSendLagMs, next.Client.MaxFreeSendLagMs = 4.4, 134.7
	next.Profile = &ProfileReport{WindowStartS: 6, WindowEndS: 11}
	return base, next
}

func TestComparePageShowsTheVerdictOfEveryMetricInChromium(t *testing.T) {
	bin := testkit.Chromium(t)
	base, next := comparePair(t)
	limits, err := ParseLimits("p99=10%,p50=10%,rps=5%,errors=10")
	if err != nil {
		t.Fatal(err)
	}
	want := Compare(base, next, limits)
	verdictOf := map[string]string{}
	for _, r := range want.Rows {
		verdictOf[r.Metric] = r.Verdict
	}
	if verdictOf["p99"] != VerdictRegressed || verdictOf["p50"] != VerdictNoisy || verdictOf["rps"] != VerdictPass || verdictOf["errors"] != VerdictPass {
		t.Fatalf("the pair does not test what it should: %v", verdictOf)
	}
	var buf bytes.Buffer
	if err := WriteCompareHTML(&buf, base, next, [2]string{"runs/base.json", "runs/new.json"}, CompareOptions{Limits: limits}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script src=") || strings.Contains(buf.String(), "<link ") {
		t.Fatal("the page loads something from outside itself")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "compare.html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	dom := string(testkit.Headless(t, bin, "--dump-dom", "file://"+page))
	if !strings.Contains(dom, `data-errors=""`) || !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page reported script errors: %s", regexp.MustCompile(`data-errors="[^"]*"`).FindString(dom))
	}

	// Every metric's row, as the browser holds it: base, new, change,
	// limit and verdict as compare computes them.
	rowRe := regexp.MustCompile(`<tr data-metric="([a-z_0-9]+)" data-verdict="([a-z]+)"><td>[^<]*</td><td class="num base">([^<]*)</td><td class="num new">([^<]*)</td><td class="num change">([^<]*)</td><td class="num">[^<]*</td><td class="limit">([^<]*)</td><td class="verdict ([a-z]+)">([a-z]+)</td>`)
	rows := rowRe.FindAllStringSubmatch(dom, -1)
	if len(rows) != len(want.Rows) {
		t.Fatalf("%d metric rows in the page, compare has %d", len(rows), len(want.Rows))
	}
	for i, m := range rows {
		w := want.Rows[i]
		limit := ""
		if w.Limit != nil {
			limit = w.Limit.String()
		}
		got := []string{m[1], m[2], m[3], m[4], m[5], html.UnescapeString(m[6]), m[7], m[8]}
		exp := []string{w.Metric, w.Verdict, num(w.Base, w.Unit), num(w.New, w.Unit), signed(w.Change, w.Unit), limit, w.Verdict, w.Verdict}
		if strings.Join(got, "|") != strings.Join(exp, "|") {
			t.Errorf("row %s: page %q, compare %q", w.Metric, got, exp)
		}
	}
	if !regexp.MustCompile(`id="verdict" class="regressed"[^>]*>regressed: p99 over the limit</p>`).MatchString(dom) {
		t.Errorf("overall verdict: %s", regexp.MustCompile(`id="verdict"[^<]*`).FindString(dom))
	}
	notes := regexp.MustCompile(`<li class="note-item">([^<]*)</li>`).FindAllStringSubmatch(dom, -1)
	if len(notes) != len(want.Notes) || len(notes) != 3 {
		t.Fatalf("%d notes on the page, compare has %q", len(notes), want.Notes)
	}
	for i, n := range notes {
		if html.UnescapeString(n[1]) != want.Notes[i] {
			t.Errorf("note %d: page %q, compare %q", i, n[1], want.Notes[i])
		}
	}
	if !strings.Contains(dom, "<td>--rate</td><td>1000</td><td>990</td>") || strings.Contains(dom, "<td>--out</td>") {
		t.Errorf("settings that differ: %s", regexp.MustCompile(`(?s)<table id="differ">.*?</table>`).FindString(dom))
	}

	// One colour a run on every chart; each run's bands on a row of its own.
	attr := func(id, name string) string {
		m := regexp.MustCompile(`id="` + id + `"[^>]*` + name + `="([^"]*)"`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("no %s on #%s in the rendered page", name, id)
		}
		return m[1]
	}
	for _, id := range []string{"percentiles", "throughput", "latency", "errors"} {
		for _, pair := range strings.Split(attr(id, "data-colors"), ",") {
			label, color, _ := strings.Cut(pair, "=")
			if (strings.HasPrefix(label, "base ") && color != baseColor) || (strings.HasPrefix(label, "new ") && color != newColor) || !strings.Contains("base new", strings.Fields(label)[0]) {
				t.Errorf("#%s: series %q drawn in %s", id, label, color)
			}
		}
	}
	if got := attr("latency", "data-series"); got != "4" {
		t.Errorf("latency chart: %s series, want p50 and p99 of each run", got)
	}
	for _, id := range []string{"throughput", "latency", "errors"} {
		if got := attr(id, "data-bands"); got != "base:warmup:row0,new:warmup:row1,new:window:row1" {
			t.Errorf("#%s bands %q", id, got)
		}
	}
	// The last, partial second of each run is left out; the percentile
	// curve stops at 1/(1-p) = 20000 requests.
	if got := attr("throughput", "data-points"); got != "42" {
		t.Errorf("throughput: %s points, want 2 runs x 21 whole seconds", got)
	}
	if got := attr("percentiles", "data-points"); got != "88" {
		t.Errorf("percentile curve: %s points, want 2 x 44 (up to 10^4.3)", got)
	}
	shot := filepath.Join(dir, "compare.png")
	testkit.Headless(t, bin, "--screenshot="+shot, "file://"+page)
	if png, err := os.ReadFile(shot); err != nil || len(png) < 10000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if dst := os.Getenv("LOADPROF_KEEP_SCREENSHOT"); dst != "" {
		png, _ := os.ReadFile(shot)
		os.WriteFile(dst, png, 0o644)
	}
}

// Results without a per-second series (written by hand, or merged by an
// older loadprof) still make a page without script errors.
func TestComparePageOfRunsWithoutASeriesRendersWithoutErrors(t *testing.T) {
	bin := testkit.Chromium(t)
	base, next := crafted(t, 500, 100, 100, 0), crafted(t, 500, 100, 100, 500)
	var buf bytes.Buffer
	if err := WriteCompareHTML(&buf, base, next, [2]string{"a.json", "b.json"}, CompareOptions{}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "compare.html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	dom := string(testkit.Headless(t, bin, "--dump-dom", "file://"+page))
	if !strings.Contains(dom, `data-errors=""`) || !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page reported script errors: %s", regexp.MustCompile(`data-errors="[^"]*"`).FindString(dom))
	}
	if !strings.Contains(dom, `<tr data-metric="errors" data-verdict="worse">`) || !strings.Contains(dom, "no limits given (--max)") {
		t.Fatalf("verdicts without limits: %s", regexp.MustCompile(`<tr data-metric[^>]*>`).FindAllString(dom, -1))
	}
}

func TestCompareHTMLTemplateGolden(t *testing.T) {
	base, next := comparePair(t)
	limits, _ := ParseLimits("p99=10%,p50=10%,rps=5%,errors=10")
	var buf bytes.Buffer
	if err := WriteCompareHTML(&buf, base, next, [2]string{"base.json", "new.json"}, CompareOptions{Limits: limits, NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "compare.golden.html")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("the compare page differs from %s (after checking the change: go test ./report -run CompareHTMLTemplateGolden -args -update)", golden)
	}
}
