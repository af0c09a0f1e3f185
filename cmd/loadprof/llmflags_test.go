package main

import (
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// TestRunRefusesLLMTermsAtTheTimeout checks that TTFT, ITL and TPOT terms
// at or above --timeout, which a stalled stream's timeout keeps from ever
// being broken, are refused in one line naming both flags, in one run and
// in a sweep; e2e terms, which a long stream may pass, are not.
func TestRunRefusesLLMTermsAtTheTimeout(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 2 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 3}})
	url := "http://" + srv.RESTAddr() + "/v1/chat/completions"
	data := writeFile(t, "chat.jsonl", llmSLOChat)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--requests", "5", "--concurrency", "1", "--slo", "ttft_p99<30s", "--timeout", "30s"}, "--slo ttft_p99<30s: at or above --timeout 30s"},
		{[]string{"--requests", "5", "--concurrency", "1", "--slo", "ttft_p50<100ms,itl_max<40s", "--timeout", "30s"}, "--slo itl_max<40s: at or above --timeout 30s"},
		{[]string{"--requests", "5", "--concurrency", "1", "--slo", "tpot_mean<10s"}, "--slo tpot_mean<10s: at or above --timeout 10s"},
		{[]string{"--rate", "10:20:10", "--duration", "1s", "--slo", "itl_p99<2s", "--timeout", "1500ms"}, "--slo itl_p99<2s: at or above --timeout 1.5s"},
	} {
		args := append([]string{"run", "--url", url, "--data", data, "--warmup", "0"}, c.args...)
		code, _, stderr := loadprof(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
	// Under the timeout, and e2e at or above it, run.
	code, _, stderr := loadprof(t, "run", "--url", url, "--data", data, "--warmup", "0", "--requests", "5", "--concurrency", "1",
		"--slo", "ttft_p99<29s,e2e_p99<40s", "--timeout", "30s")
	if code != 0 {
		t.Errorf("ttft under and e2e over --timeout: exit %d, %s", code, stderr)
	}
}
