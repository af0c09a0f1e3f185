package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// runLLM runs an OpenAI-compatible target on the simulator and returns
// its result; extra are more flags.
func runLLM(t *testing.T, srv *sim.Server, out string, extra ...string) *report.Result {
	t.Helper()
	data := writeFile(t, "chat.jsonl", `{"model":"test_model","messages":[{"role":"user","content":"hi there"}],"stream":true,"stream_options":{"include_usage":true}}
`)
	args := append([]string{"run", "--url", "http://" + srv.RESTAddr() + "/v1/chat/completions", "--data", data, "-q", "--out", out}, extra...)
	code, _, stderr := loadprof(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	res, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestLLMHistogramsKeptWindowSplitMergedAndHGRM checks that result.json
// keeps the stream histograms (matching ttft_ms and the others), splits
// them by the profile window, that merge adds them exactly (the merged
// figures are those of the inputs' histograms added, the tokens added)
// and that --hgrm writes one distribution file per stream figure.
func TestLLMHistogramsKeptWindowSplitMergedAndHGRM(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 4 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 5, KeepStreams: 1000}})
	dir := t.TempDir()
	hgrm := filepath.Join(dir, "a.hgrm")
	a := runLLM(t, srv, filepath.Join(dir, "a.json"), "--rate", "40", "--duration", "3s", "--warmup", "0",
		"--profile", srv.GRPCAddr(), "--profile-delay", "1s", "--profile-duration", "1s", "--logdir", filepath.Join(dir, "tb"), "--hgrm", hgrm)
	b := runLLM(t, srv, filepath.Join(dir, "b.json"), "--rate", "60", "--requests", "30", "--warmup", "0")

	for name, r := range map[string]*report.Result{"a": a, "b": b} {
		if r.LLMHistograms == nil {
			t.Fatalf("%s: no llm_histograms", name)
		}
		hs, err := r.LLMHistograms.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if report.StatsOf(hs["ttft"]) != *r.TTFT || report.StatsOf(hs["itl"]) != *r.ITL || report.StatsOf(hs["tpot"]) != *r.TPOT || report.StatsOf(hs["e2e"]) != *r.E2E {
			t.Errorf("%s: histograms do not give ttft_ms/itl_ms/tpot_ms/e2e_ms", name)
		}
	}
	if a.LLMWindow == nil || a.LLMOutside == nil {
		t.Fatalf("a ran a window: llm_window %v llm_outside %v", a.LLMWindow, a.LLMOutside)
	}
	if a.LLMWindow.Requests == 0 || a.LLMOutside.Requests == 0 || a.LLMWindow.Requests+a.LLMOutside.Requests != a.Requests ||
		a.LLMWindow.TTFT.Count+a.LLMOutside.TTFT.Count != a.TTFT.Count || a.LLMWindow.ITL.Count+a.LLMOutside.ITL.Count != a.ITL.Count {
		t.Errorf("window split: in %d (ttft %d itl %d), outside %d (ttft %d itl %d), all %d (ttft %d itl %d)",
			a.LLMWindow.Requests, a.LLMWindow.TTFT.Count, a.LLMWindow.ITL.Count, a.LLMOutside.Requests, a.LLMOutside.TTFT.Count, a.LLMOutside.ITL.Count,
			a.Requests, a.TTFT.Count, a.ITL.Count)
	}
	if a.Window == nil || a.LLMWindow.Requests != a.Window.Requests {
		t.Errorf("llm_window holds %d requests, window %v", a.LLMWindow.Requests, a.Window)
	}
	if b.LLMWindow != nil {
		t.Errorf("b ran no window but has llm_window")
	}

	for _, kind := range report.LLMKinds {
		raw, err := os.ReadFile(filepath.Join(dir, "a."+kind+".hgrm"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "Value     Percentile TotalCount 1/(1-Percentile)") && !strings.Contains(string(raw), "Percentile") {
			t.Errorf("a.%s.hgrm is no percentile distribution:\n%s", kind, raw)
		}
	}

	merged := filepath.Join(dir, "m.json")
	if code, _, stderr := loadprof(t, "merge", filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), "-o", merged, "--force"); code != 0 {
		t.Fatalf("merge exit %d: %s", code, stderr)
	}
	m, err := report.ReadResult(merged)
	if err != nil {
		t.Fatal(err)
	}
	if m.TTFT == nil || m.LLMHistograms == nil {
		t.Fatalf("merge dropped the stream figures")
	}
	ha, _ := a.LLMHistograms.Decode()
	hb, _ := b.LLMHistograms.Decode()
	for kind, got := range map[string]*report.Stats{"ttft": m.TTFT, "itl": m.ITL, "tpot": m.TPOT, "e2e": m.E2E} {
		want := ha[kind]
		want.Merge(hb[kind])
		if report.StatsOf(want) != *got {
			t.Errorf("merged %s %+v, the inputs' histograms added give %+v", kind, *got, report.StatsOf(want))
		}
	}
	if *m.OutputTokens != *a.OutputTokens+*b.OutputTokens || *m.InputTokens != *a.InputTokens+*b.InputTokens {
		t.Errorf("tokens: merged %d/%d, inputs %d+%d / %d+%d", *m.OutputTokens, *m.InputTokens, *a.OutputTokens, *b.OutputTokens, *a.InputTokens, *b.InputTokens)
	}
	span := m.Phases.Steady.End - m.Phases.Steady.Start
	wantPerS := float64(a.LLMHistograms.TimedOutputTokens+b.LLMHistograms.TimedOutputTokens) / span
	if *m.OutputTokensPerS > wantPerS*1.0001 || *m.OutputTokensPerS <= 0 {
		t.Errorf("output tokens/s %v, at most %v over the merged span %vs", *m.OutputTokensPerS, wantPerS, span)
	}
	if m.LLMWindow == nil || m.LLMWindow.Requests != a.LLMWindow.Requests || m.LLMOutside.Requests != a.LLMOutside.Requests+b.Requests {
		t.Errorf("merged window split: %+v / %+v", m.LLMWindow, m.LLMOutside)
	}
}

// TestLLMHTMLSectionEqualsTheSummary renders an OpenAI-compatible run's
// page in headless Chromium and checks that its stream table, tokens line
// and stream failures say what the text summary says, and that the TTFT
// and ITL percentile chart was drawn.
func TestLLMHTMLSectionEqualsTheSummary(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 3 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4, KeepStreams: 1000}})
	dir := t.TempDir()
	res := filepath.Join(dir, "a.json")
	runLLM(t, srv, res, "--rate", "50", "--requests", "40", "--warmup", "0")
	code, summary, stderr := loadprof(t, "report", res)
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	page := filepath.Join(dir, "a.html")
	if code, _, stderr := loadprof(t, "report", res, "--html", page); code != 0 {
		t.Fatalf("report --html exit %d: %s", code, stderr)
	}
	dom := testkit.PageDOM(t, page)
	cell := regexp.MustCompile(`<td class="num" data-stat="([a-z0-9]+)">([^<]*)</td>`)
	for _, kind := range []string{"ttft", "itl", "tpot", "e2e"} {
		row := regexp.MustCompile(`<tr data-stream="` + kind + `">(.*?)</tr>`).FindStringSubmatch(dom)
		if row == nil {
			t.Fatalf("no %s row on the page", kind)
		}
		var cells []string
		for _, m := range cell.FindAllStringSubmatch(row[1], -1) {
			cells = append(cells, m[2])
		}
		line := regexp.MustCompile(`(?m)^  ` + kind + `\s+(.*)$`).FindStringSubmatch(summary)
		if line == nil {
			t.Fatalf("no %s line in the summary:\n%s", kind, summary)
		}
		if got, want := strings.Join(cells, " "), strings.Join(strings.Fields(line[1]), " "); got != want {
			t.Errorf("%s: page %q, summary %q", kind, got, want)
		}
	}
	tokens := regexp.MustCompile(`(?m)^  tokens\s+(.*)$`).FindStringSubmatch(summary)
	if tokens == nil || !strings.Contains(dom, `<span data-tokens="true">`+tokens[1]+`</span>`) {
		t.Errorf("tokens line %v not on the page", tokens)
	}
	if !strings.Contains(dom, `<tr data-class="closed_mid_stream"><td>closed_mid_stream</td><td class="num" data-stat="count">0</td></tr>`) {
		t.Errorf("stream failures not on the page")
	}
	if !regexp.MustCompile(`id="[^"]*-llm-percentiles" data-curves="ttft,itl"`).MatchString(dom) && !strings.Contains(dom, `data-curves="ttft,itl"`) {
		t.Errorf("the TTFT/ITL percentile chart was not drawn")
	}
}
