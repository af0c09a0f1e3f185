package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
)

// resultFile writes a result of 10000 requests spread evenly up to maxMs at
// rps requests a second, and returns its path.
func resultFile(t *testing.T, name string, maxMs, rps float64) string {
	return resultFileWithSeconds(t, name, maxMs, rps, nil)
}

// resultFileWithSeconds is resultFile with a warm-up second and a steady
// second for each p99s value (ms), the run's per-second series.
func resultFileWithSeconds(t *testing.T, name string, maxMs, rps float64, p99s []float64) string {
	t.Helper()
	h := load.NewHistogram()
	for i := 1; i <= 10000; i++ {
		h.RecordValue(int64(1000 + (maxMs-1)*1000*float64(i)/10000))
	}
	enc, err := report.EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	r := &report.Result{Version: 2, Tool: "loadprof test", Target: "http://127.0.0.1:1/v1/models/m:predict", Transport: "rest",
		Loop: "open", LatencyFrom: "intended_send", Requests: 10000, ThroughputRPS: rps, SuccessRPS: rps,
		Latency: report.StatsOf(h), LatencyOK: report.StatsOf(h), Histogram: enc, Errors: map[string]int64{},
		Config: map[string]any{"rate": "1000"}}
	if len(p99s) > 0 {
		r.Phases = report.Phases{Warmup: report.Phase{Start: 0, End: 1}, Steady: report.Phase{Start: 1, End: float64(1 + len(p99s))}}
		for i, p99 := range append([]float64{p99s[0]}, p99s...) {
			r.Series = append(r.Series, report.Second{Second: i, Requests: int64(rps), P50Us: int64(p99 * 500), P99Us: int64(p99 * 1000), MaxUs: int64(p99 * 1100)})
		}
	}
	path := filepath.Join(t.TempDir(), name)
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompareExitCodesFollowTheDirectionOfEachMetric(t *testing.T) {
	base := resultFile(t, "base.json", 100, 1000)
	faster := resultFile(t, "faster.json", 100, 1060) // rps up 6%
	slower := resultFile(t, "slower.json", 100, 940)  // rps down 6%
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{base, faster, "--max", "rps=5%"}, 0, "no regression"},
		{[]string{base, slower, "--max", "rps=5%"}, 1, "REGRESSION: rps over the limit"},
		{[]string{base, slower, "--max", "rps=-5%"}, 1, "REGRESSION: rps over the limit"},
		{[]string{base, slower, "--max", "rps=10%"}, 0, "no regression"},
		{[]string{base, slower, "--max", "p99=10%", "--max", "rps=5%"}, 1, "REGRESSION: rps over the limit"},
	}
	for _, c := range cases {
		code, stdout, stderr := loadprof(t, append([]string{"compare"}, c.args...)...)
		if code != c.code || !strings.Contains(stdout, c.want) {
			t.Errorf("compare %s: exit %d (want %d)\n%s%s", strings.Join(c.args[2:], " "), code, c.code, stdout, stderr)
		}
	}
	for _, bad := range []struct{ args []string }{
		{[]string{"--max", "p99=10%,p99=5%"}},
		{[]string{"--max", "p99=10%", "--max", "p99=5%"}},
	} {
		code, stdout, stderr := loadprof(t, append([]string{"compare", base, faster}, bad.args...)...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "loadprof compare: --max: p99 is limited twice (p99=10% and p99=5%)") {
			t.Errorf("compare %v: exit %d, stderr %q", bad.args, code, stderr)
		}
	}
	code, _, stderr := loadprof(t, "compare", base, faster, "--max", "rps=+5%")
	if code != 2 || !strings.Contains(stderr, `--max "rps=+5%": rps regresses when it drops`) {
		t.Errorf("rps=+5%%: exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ := loadprof(t, "compare", "--help")
	if code != 0 || !strings.Contains(stdout, "rps=5% fails when the throughput drops by more than 5%") || !strings.Contains(stdout, `"+5%" is refused`) {
		t.Errorf("--help does not give the sign convention:\n%s", stdout)
	}
}

func TestCompareNoisyPassesUnlessNoisyFails(t *testing.T) {
	wandering := []float64{50, 150, 70, 140, 60, 130, 90, 50, 150, 70}
	base := resultFileWithSeconds(t, "base.json", 100, 1000, wandering)
	next := resultFileWithSeconds(t, "new.json", 112, 1000, append(wandering[3:], wandering[:3]...)) // p99 up 12%
	code, stdout, stderr := loadprof(t, "compare", base, next, "--max", "p99=5%")
	if code != 0 || !strings.Contains(stdout, "noisy: p99 over the limit by less than the runs vary") || !strings.Contains(stdout, "no regression") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = loadprof(t, "compare", base, next, "--max", "p99=5%", "--noisy-fails")
	if code != 1 || !strings.Contains(stdout, "REGRESSION: p99 over the limit") || !strings.Contains(stdout, "REGRESSED (noisy: the change is within the runs' own variation") {
		t.Fatalf("--noisy-fails: exit %d\n%s%s", code, stdout, stderr)
	}
	// The page says what the gate says (review: report had no --noisy-fails).
	for _, c := range []struct {
		flags   []string
		verdict string
	}{{nil, "noisy"}, {[]string{"--noisy-fails"}, "regressed"}} {
		page := filepath.Join(t.TempDir(), "compare.html")
		code, stdout, stderr := loadprof(t, append([]string{"report", base, next, "--html", page, "--max", "p99=5%"}, c.flags...)...)
		html, _ := os.ReadFile(page)
		if want := `<tr data-metric="p99" data-verdict="` + c.verdict + `">`; code != 0 || !strings.Contains(string(html), want) {
			t.Fatalf("report %v: exit %d, the page has no %q\n%s%s", c.flags, code, want, stdout, stderr)
		}
	}
}

func TestReportOfTwoResultsWritesTheComparePageWithTheLimits(t *testing.T) {
	base := resultFile(t, "base.json", 100, 1000)
	next := resultFile(t, "new.json", 120, 1000)
	page := filepath.Join(t.TempDir(), "compare.html")
	code, stdout, stderr := loadprof(t, "report", base, next, "--html", page, "--max", "p99=10%,rps=5%")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<tr data-metric="p99" data-verdict="regressed">`, `<tr data-metric="rps" data-verdict="pass">`, "regressed: p99 over the limit"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the page has no %q", want)
		}
	}
	for _, bad := range [][]string{
		{"report", base, "--html", page, "--max", "p99=10%"},
		{"report", base, next, "--max", "p99=10%"},
		{"report", base, next, "--html", page, "--max", "p99=10%,p99=1%"},
	} {
		code, _, stderr := loadprof(t, bad...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--max") {
			t.Errorf("%v: exit %d, stderr %q", bad[1:], code, stderr)
		}
	}
}

// withServer rewrites the result at path with a server block whose p99
// estimate is p99Ms (in a bucket of its own) and mean meanMs.
func withServer(t *testing.T, path string, meanMs, p99Ms float64) string {
	t.Helper()
	r, err := report.ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	requests, hi, outside := float64(r.Requests), p99Ms*1.1, r.LatencyOK.Mean-meanMs
	r.Server = &report.ServerReport{Server: "tfserving", OutsideMs: &outside, ServerWindow: report.ServerWindow{Window: "steady",
		ServerFigures: report.ServerFigures{Requests: &requests, LatencyMs: &report.ServerLatency{Family: ":tensorflow:serving:request_latency",
			Count: requests, Mean: meanMs, P99: &report.ServerQuantile{Ms: p99Ms, BucketLowMs: p99Ms * 0.9, BucketHighMs: &hi}}}}}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := r.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// compare --max takes the server's figures: exit 1 when the server's p99
// rose past its limit, or when the new run has no server figures at all.
func TestCompareMaxOnTheServersFiguresSetsTheExitCode(t *testing.T) {
	plain := resultFile(t, "base.json", 100, 1000)
	base := withServer(t, plain, 3, 6)
	same := withServer(t, resultFile(t, "same.json", 100, 1000), 3.1, 6.2)
	slower := withServer(t, resultFile(t, "slower.json", 100, 1000), 3.1, 9)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{base, same, "--max", "server_p99=+10%"}, 0, "server_p99             6.000        6.200       +0.200     +3.3%  <= +10%    pass"},
		{[]string{base, slower, "--max", "server_p99=+10%"}, 1, "REGRESSION: server_p99 over the limit"},
		{[]string{base, slower, "--max", "server_p99=5ms,server_mean=1ms"}, 0, "no regression"},
		{[]string{base, plain, "--max", "p99=10%", "--max", "server_p99=10%"}, 1, "the new run has no such server figure (--metrics): the limit cannot pass"},
		{[]string{base, same, "--max", "server_requests=1%"}, 2, "server_requests takes no limit"},
	} {
		code, stdout, stderr := loadprof(t, append([]string{"compare"}, c.args...)...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("compare %v: exit %d (want %d), want %q in\n%s%s", c.args[2:], code, c.code, c.want, stdout, stderr)
		}
	}
}
