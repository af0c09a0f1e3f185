package main

import (
	"fmt"
	"os/exec"
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

// TestRunOpenAIBodiesFromStdin checks --data - for an OpenAI-compatible
// target: one body (pretty-printed over lines), a list, or JSON lines, as
// for TF Serving bodies; a wrong line is named by its line on "-".
func TestRunOpenAIBodiesFromStdin(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 8, KeepStreams: 1000}})
	url := "http://" + srv.RESTAddr() + "/v1/completions"
	body := func(maxTokens int) string {
		return fmt.Sprintf(`{"model": "test_model", "prompt": "one two", "max_tokens": %d, "stream": true}`, maxTokens)
	}
	for _, c := range []struct {
		name, stdin string
		want        []int // the max_tokens the server saw
	}{
		{"one body over lines", "{\n  \"model\": \"test_model\",\n  \"prompt\": \"one two\",\n  \"max_tokens\": 2\n}\n", []int{2}},
		{"a list", "[" + body(3) + ",\n" + body(4) + "]", []int{3, 4}},
		{"JSON lines", body(5) + "\n\n" + body(6) + "\n", []int{5, 6}},
	} {
		before := len(srv.LLMStreams())
		cmd := exec.Command(binary, "run", "--url", url, "--data", "-", "--requests", "6", "--concurrency", "1", "--warmup", "0")
		cmd.Stdin = strings.NewReader(c.stdin)
		code, _, stderr := command(t, cmd)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.name, code, stderr)
		}
		seen := map[int]int{}
		for _, r := range srv.LLMStreams()[before:] {
			seen[r.OutputTokens]++
		}
		// Each body is sent (the run's own check may add one).
		for _, n := range c.want {
			if seen[n] < 6/len(c.want) {
				t.Errorf("%s: the server saw max_tokens counts %v, want %v each at least %d times", c.name, seen, c.want, 6/len(c.want))
			}
		}
		if len(seen) != len(c.want) {
			t.Errorf("%s: the server saw %v, want %v", c.name, seen, c.want)
		}
	}
	cmd := exec.Command(binary, "run", "--url", url, "--data", "-", "--requests", "2", "--concurrency", "1")
	cmd.Stdin = strings.NewReader(body(2) + "\n" + `{"model": "test_model", "prompt": {"a": 1}}` + "\n")
	code, _, stderr := command(t, cmd)
	if code != 2 || !strings.Contains(stderr, "-: line 2") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("a wrong second line on stdin: exit %d, %q", code, stderr)
	}
}
