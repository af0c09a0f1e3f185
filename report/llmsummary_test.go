package report

import (
	"html"
	"strings"
	"testing"
)

func TestSummaryShowsLLMStreamFigures(t *testing.T) {
	out, in, perS := int64(640), int64(30), 812.5
	r := &Result{Transport: "rest", Target: "http://h/v1/completions", Protocol: ProtocolOpenAI, Loop: "open",
		TTFT:         &Stats{Count: 10, Min: 20, Mean: 21, P50: 21, P90: 22, P95: 22, P99: 23, P999: 23, Max: 23},
		ITL:          &Stats{Count: 630, Min: 0, Mean: 5, P50: 5, P90: 6, P95: 6, P99: 7, P999: 8, Max: 9},
		TPOT:         &Stats{Count: 10, Min: 4.9, Mean: 5, P50: 5, P90: 5, P95: 5, P99: 5.1, P999: 5.1, Max: 5.1},
		E2E:          &Stats{Count: 10, Min: 330, Mean: 335, P50: 335, P90: 340, P95: 340, P99: 341, P999: 341, Max: 341},
		OutputTokens: &out, InputTokens: &in, OutputTokensPerS: &perS}
	var b strings.Builder
	WriteSummary(&b, r)
	s := b.String()
	for _, want := range []string{"loadprof run: REST http://h/v1/completions (OpenAI-compatible; open loop; latency from send time)\n", "  ttft            10    20.00", "  itl            630        0    5.000", "  tpot ", "  e2e             10   330.00",
		"tokens   640 output, 30 input, 812.5 output tokens/s"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	b.Reset()
	r.TTFT = nil
	WriteSummary(&b, r)
	if strings.Contains(b.String(), "ttft") {
		t.Errorf("stream table for a target without it:\n%s", b.String())
	}
}

// TestSummaryWarnsOfStreamsWithoutOutputAndUsageBelowTheChunks checks the
// summary's warnings.
func TestSummaryWarnsOfStreamsWithoutOutputAndUsageBelowTheChunks(t *testing.T) {
	none, below := int64(4), int64(7)
	r := &Result{Transport: "rest", Target: "http://h/v1/chat/completions", Protocol: ProtocolOpenAI, Loop: "open",
		TTFT: &Stats{}, StreamsWithoutOutput: &none, UsageBelowChunks: &below}
	var b strings.Builder
	WriteSummary(&b, r)
	for _, want := range []string{"warning: 4 streams reached data: [DONE] without one output chunk", "warning: 7 answers' usage gave fewer completion tokens than the output chunks"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	r.StreamsWithoutOutput, r.UsageBelowChunks = nil, nil
	b.Reset()
	WriteSummary(&b, r)
	if strings.Contains(b.String(), "warning:") {
		t.Errorf("a warning without the counts:\n%s", b.String())
	}
}

// A server that sent no usage gives no input count: the tokens line says
// it is unknown, not 0.
func TestTokensLineSaysInputUnknownWithoutUsage(t *testing.T) {
	out, in, perS := int64(40), int64(0), 10.0
	r := &Result{OutputTokens: &out, InputTokens: &in, OutputTokensPerS: &perS}
	if got := llmTokensLine(r); !strings.Contains(got, "input unknown") || strings.Contains(got, "0 input") {
		t.Errorf("tokens line %q", got)
	}
}

// The page shows the summary's stream warnings, word for word.
func TestPageShowsTheSummarysStreamWarnings(t *testing.T) {
	none, below := int64(4), int64(7)
	r := goldenResult(t)
	r.Target, r.Protocol, r.TTFT = "http://h/v1/chat/completions", ProtocolOpenAI, &Stats{Count: 1}
	r.StreamsWithoutOutput, r.UsageBelowChunks = &none, &below
	var page strings.Builder
	if err := WriteHTML(&page, []*Result{r}, []string{"r.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	for _, w := range llmWarnings(r) {
		if !strings.Contains(page.String(), `<p class="warn" data-stream-warning="true">warning: `+html.EscapeString(w)+`</p>`) {
			t.Errorf("the page lacks the summary's warning %q", w)
		}
	}
	if len(llmWarnings(r)) != 2 {
		t.Errorf("warnings %q", llmWarnings(r))
	}
}
