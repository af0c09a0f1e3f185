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

// TestRunOpenAIStreamsSummaryAndResult runs an OpenAI-compatible target
// from the command line, open and closed loop, and checks the summary's
// stream table and result.json's stream figures against what the
// simulator sent.
func TestRunOpenAIStreamsSummaryAndResult(t *testing.T) {
	for _, load := range [][]string{{"--rate", "50"}, {"--concurrency", "3"}} {
		t.Run(load[0], func(t *testing.T) {
			srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 10 * time.Millisecond, TokenDelay: 2 * time.Millisecond, OutputTokens: 6, KeepStreams: 100}})
			data := writeFile(t, "chat.jsonl", `{"model":"test_model","messages":[{"role":"user","content":"hi there"}],"stream":true,"stream_options":{"include_usage":true}}
{"model":"test_model","messages":[{"role":"user","content":"one two three"}],"stream":true}
`)
			out := filepath.Join(t.TempDir(), "result.json")
			args := append([]string{"run", "--url", "http://" + srv.RESTAddr() + "/v1/chat/completions", "--data", data,
				"--requests", "20", "--warmup", "0", "--out", out}, load...)
			code, stdout, stderr := loadprof(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{"/v1/chat/completions (OpenAI-compatible; ", "  ttft ", "  itl ", "  tpot ", "  e2e ", "120 output, 20 input", "output tokens/s"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("summary lacks %q:\n%s", want, stdout)
				}
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				Protocol     string             `json:"protocol"`
				Requests     int64              `json:"requests"`
				Errors       map[string]int64   `json:"errors"`
				TTFT         map[string]float64 `json:"ttft_ms"`
				ITL          map[string]float64 `json:"itl_ms"`
				TPOT         map[string]float64 `json:"tpot_ms"`
				E2E          map[string]float64 `json:"e2e_ms"`
				Latency      map[string]float64 `json:"latency_ms"`
				OutputTokens int64              `json:"output_tokens"`
				InputTokens  int64              `json:"input_tokens"`
				PerS         float64            `json:"output_tokens_per_s"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			// Half the bodies ask for usage (input tokens from it); the
			// output is counted from the chunks on the others.
			if res.Protocol != "openai" || res.Requests != 20 || len(res.Errors) != 0 || res.OutputTokens != 120 || res.InputTokens != 20 || res.PerS <= 0 {
				t.Fatalf("result: %s", raw)
			}
			if res.TTFT["count"] != 20 || res.ITL["count"] != 100 || res.TPOT["count"] != 20 || res.E2E["count"] != 20 || res.Latency["count"] != 20 {
				t.Errorf("counts: ttft %v itl %v tpot %v e2e %v latency %v", res.TTFT["count"], res.ITL["count"], res.TPOT["count"], res.E2E["count"], res.Latency["count"])
			}
			// The timing itself is checked against the simulator's record in
			// load's TestLLMStreamTimingMatchesSimulator; here, that the
			// figures are the stream's. The mean gap is not bounded by the
			// 2 ms setting: a simulator late on a busy machine writes the
			// tokens it owes back to back.
			if !(res.TTFT["p50"] >= 10 && res.TTFT["p50"] < res.E2E["p50"] && res.ITL["mean"] > 0 && res.ITL["max"] < res.E2E["max"]) {
				t.Errorf("ttft %v, itl %v, e2e %v", res.TTFT, res.ITL, res.E2E)
			}
		})
	}
}

// TestRunOpenAIStreamFaultsInErrors checks that stream failures reach the
// summary's and result.json's errors by class.
func TestRunOpenAIStreamFaultsInErrors(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 2 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4,
		Faults: sim.StreamFaults{CloseRate: 0.5, After: 2}}})
	data := writeFile(t, "c.json", `{"model":"test_model","prompt":"a b","stream":true}`)
	out := filepath.Join(t.TempDir(), "result.json")
	code, stdout, stderr := loadprof(t, "run", "--url", "http://"+srv.RESTAddr()+"/v1/completions", "--data", data,
		"--concurrency", "2", "--requests", "40", "--warmup", "0", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, _ := os.ReadFile(out)
	var res struct {
		Requests int64            `json:"requests"`
		Errors   map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if n := res.Errors["closed_mid_stream"]; n == 0 || n == 40 || len(res.Errors) != 1 || res.Requests != 40 {
		t.Fatalf("requests %d, errors %v", res.Requests, res.Errors)
	}
	if !strings.Contains(stdout, "closed_mid_stream") {
		t.Errorf("summary:\n%s", stdout)
	}
}
