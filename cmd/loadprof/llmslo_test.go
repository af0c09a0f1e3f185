package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

const llmSLOChat = `{"model":"test_model","messages":[{"role":"user","content":"hi"}],"stream":true}
`

// TestRunLLMSLOGoodput checks that one run with LLM terms in --slo writes
// the goodput to result.json and the summary: a bound every request meets
// gives all of them, one none can meet (TTFT under the simulator's fixed
// TTFT) none.
func TestRunLLMSLOGoodput(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 20 * time.Millisecond, TokenDelay: 2 * time.Millisecond, OutputTokens: 4}})
	data := writeFile(t, "chat.jsonl", llmSLOChat)
	for _, c := range []struct {
		slo  string
		good int64
	}{{"ttft_p99<5s,itl_p99<5s", 10}, {"ttft_p99<10ms,e2e_p99<5s", 0}} {
		out := filepath.Join(t.TempDir(), "result.json")
		code, stdout, stderr := loadprof(t, "run", "--url", "http://"+srv.RESTAddr()+"/v1/chat/completions", "--data", data,
			"--requests", "10", "--warmup", "0", "--concurrency", "2", "--slo", c.slo, "--out", out)
		if code != 0 {
			t.Fatalf("--slo %s: exit %d: %s", c.slo, code, stderr)
		}
		if !strings.Contains(stdout, "goodput ") || !strings.Contains(stdout, c.slo) {
			t.Errorf("--slo %s: the summary has no goodput line:\n%s", c.slo, stdout)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Goodput *struct {
				Requests int64   `json:"requests"`
				Rate     float64 `json:"rate"`
				Share    float64 `json:"share"`
				SLO      string  `json:"slo"`
			} `json:"goodput"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		g := res.Goodput
		if g == nil || g.Requests != c.good || g.SLO != c.slo || g.Share != float64(c.good)/10 || (c.good > 0) != (g.Rate > 0) {
			t.Errorf("--slo %s: goodput %+v, want %d requests", c.slo, g, c.good)
		}
	}
}

// TestRunLLMSLORefusedForOtherTargets checks that LLM terms are refused,
// with one line naming --slo, for a target without stream figures, and
// that a single run's --slo without LLM terms still asks for a sweep.
func TestRunLLMSLORefusedForOtherTargets(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "req.json", `{"instances":[[1.0, 2.0, 3.0, 4.0]]}`)
	url := "http://" + srv.RESTAddr() + "/v1/models/test_model:predict"
	code, _, stderr := loadprof(t, "run", "--url", url, "--data", data, "--requests", "5", "--warmup", "0", "--concurrency", "1", "--slo", "ttft_p99<500ms")
	if code != 2 || !strings.Contains(stderr, "--slo ttft_p99") || !strings.Contains(stderr, "OpenAI-compatible") {
		t.Errorf("LLM terms on a TF Serving target: exit %d, %s", code, stderr)
	}
	code, _, stderr = loadprof(t, "run", "--url", url, "--data", data, "--rate", "10:20:10", "--duration", "1s", "--warmup", "0", "--slo", "p99<1s,itl_p99<50ms")
	if code != 2 || !strings.Contains(stderr, "--slo itl_p99") {
		t.Errorf("LLM terms in a sweep of a TF Serving target: exit %d, %s", code, stderr)
	}
	code, _, stderr = loadprof(t, "run", "--url", url, "--data", data, "--requests", "5", "--concurrency", "1", "--slo", "p99<1s")
	if code != 2 || !strings.Contains(stderr, "go with a sweep") {
		t.Errorf("latency terms in one run: exit %d, %s", code, stderr)
	}
	if code, _, stderr = loadprof(t, "run", "--url", url, "--data", data, "--requests", "5", "--concurrency", "1", "--slo", "ttft_p98<1s"); code != 2 || !strings.Contains(stderr, "unknown metric") {
		t.Errorf("an unknown LLM statistic: exit %d, %s", code, stderr)
	}
	// A coordinator refuses them before any worker joins (each worker
	// would refuse them only once all had).
	code, _, stderr = loadprofWithin(t, 30*time.Second, "run", "--url", url, "--data", data, "--rate", "10", "--duration", "1s",
		"--workers", "2", "--token", "a-shared-token-of-some-length", "--slo", "ttft_p99<500ms")
	if code != 2 || !strings.Contains(stderr, "--slo ttft_p99") || !strings.Contains(stderr, "OpenAI-compatible") {
		t.Errorf("LLM terms on a TF Serving target with --workers: exit %d, %s", code, stderr)
	}
}

// TestSweepLLMSLOFindsTheBatchLimit sweeps concurrency against a
// simulated model that decodes 2 streams at full speed and slows beyond:
// the median-gap term (60ms over 40ms gaps; a median, which a hiccup of a
// busy machine does not move) passes at 1 and 2 streams and breaks at 4
// (80ms gaps once the first streams have ended), and the table shows the
// stream figures and goodput per step.
func TestSweepLLMSLOFindsTheBatchLimit(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 5 * time.Millisecond, TokenDelay: 40 * time.Millisecond, OutputTokens: 6, Capacity: 2}})
	data := writeFile(t, "chat.jsonl", llmSLOChat)
	out := filepath.Join(t.TempDir(), "sweep.json")
	code, stdout, stderr := loadprof(t, "run", "--url", "http://"+srv.RESTAddr()+"/v1/chat/completions", "--data", data,
		"--concurrency", "1:4:x2", "--duration", "2s", "--warmup", "0", "--slo", "itl_p50<60ms,ttft_p99<5s", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stderr, "step concurrency_4: ") || !strings.Contains(stderr, "itl p99 ") {
		t.Errorf("the progress lines lack the steps' stream figures:\n%s", stderr)
	}
	for _, want := range []string{"ttft p99 ms", "itl p99 ms", "out tok/s", "goodput/s", "highest concurrency meeting the SLO (itl_p50<60ms,ttft_p99<5s): 2"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the sweep table lacks %q:\n%s", want, stdout)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		MaxPassing *float64 `json:"max_passing"`
		Steps      []struct {
			Level  float64  `json:"level"`
			Pass   bool     `json:"pass"`
			Broken []string `json:"broken"`
			Result struct {
				Requests int64 `json:"requests"`
				Goodput  *struct {
					Requests int64 `json:"requests"`
				} `json:"goodput"`
			} `json:"result"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.MaxPassing == nil || *res.MaxPassing != 2 || len(res.Steps) != 3 {
		t.Fatalf("sweep: %s", raw)
	}
	last := res.Steps[2]
	if last.Pass || len(last.Broken) == 0 || !strings.HasPrefix(last.Broken[0], "itl_p50 ") {
		t.Errorf("step 4 streams: pass %v, broken %q", last.Pass, last.Broken)
	}
	// Goodput asks every gap of a request to be under the term: a busy
	// machine's hiccup costs a passing step some requests, but the broken
	// step, whose streams are planned at 80ms gaps, keeps fewer than half
	// and fewer than any passing step.
	share := func(i int) float64 {
		g := res.Steps[i].Result.Goodput
		if g == nil || res.Steps[i].Result.Requests == 0 {
			t.Fatalf("step %g has no goodput or no requests", res.Steps[i].Level)
		}
		return float64(g.Requests) / float64(res.Steps[i].Result.Requests)
	}
	if broken := share(2); !(broken < 0.5 && broken < share(0) && broken < share(1)) {
		t.Errorf("goodput shares by step: %.2f %.2f %.2f", share(0), share(1), broken)
	}
}
