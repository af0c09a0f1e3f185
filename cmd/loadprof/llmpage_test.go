package main

import (
	"html"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/sim"
)

// TestLLMGoodputOnThePageEqualsTheSummary checks that a run with --slo
// LLM terms shows on its page the goodput line the text summary prints,
// and the TTFT p99 per second beside the latency's, and that a run
// without them shows no goodput. The run without is shorter than
// the quarter second a rate needs: its page has no per-second point, and
// its script must run all the same.
func TestLLMGoodputOnThePageEqualsTheSummary(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 3 * time.Millisecond, TokenDelay: time.Millisecond, TokenJitter: time.Millisecond, OutputTokens: 4}})
	dir := t.TempDir()
	with, without := filepath.Join(dir, "slo.json"), filepath.Join(dir, "plain.json")
	runLLM(t, srv, with, "--rate", "50", "--requests", "40", "--warmup", "0", "--slo", "ttft_p99<2s,itl_p99<1s")
	runLLM(t, srv, without, "--rate", "50", "--requests", "10", "--warmup", "0")

	code, summary, stderr := loadprof(t, "report", with)
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	line := regexp.MustCompile(`(?m)^  goodput  (.*)$`).FindStringSubmatch(summary)
	if line == nil || !strings.Contains(line[1], "40 requests (100.0%)") {
		t.Fatalf("summary goodput line %v:\n%s", line, summary)
	}
	page := filepath.Join(dir, "slo.html")
	if code, _, stderr := loadprof(t, "report", with, "--html", page); code != 0 {
		t.Fatalf("report --html exit %d: %s", code, stderr)
	}
	dom := testkit.PageDOM(t, page)
	if !strings.Contains(dom, `<span data-goodput="true">`+html.EscapeString(line[1])+`</span>`) {
		got := regexp.MustCompile(`<span data-goodput="true">[^<]*</span>`).FindString(dom)
		t.Errorf("the page's goodput %q, the summary's %q", got, line[1])
	}

	// The latency over time has a fifth line, the TTFT p99 per second.
	if !regexp.MustCompile(`id="[^"]*-latency-time"[^>]*data-series="5"`).MatchString(dom) || !strings.Contains(dom, "p99 time to first token") {
		t.Errorf("the latency over time has no TTFT line: %s", regexp.MustCompile(`<div class="chart" id="[^"]*-latency-time"[^>]*>`).FindString(dom))
	}

	plain := filepath.Join(dir, "plain.html")
	if code, _, stderr := loadprof(t, "report", without, "--html", plain); code != 0 {
		t.Fatalf("report --html exit %d: %s", code, stderr)
	}
	if dom := testkit.PageDOM(t, plain); strings.Contains(dom, "data-goodput") || !strings.Contains(dom, "data-tokens") {
		t.Errorf("a run without --slo LLM terms: goodput on the page %v, tokens line %v", strings.Contains(dom, "data-goodput"), strings.Contains(dom, "data-tokens"))
	}
}
