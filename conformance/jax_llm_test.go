package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
)

// jaxLLMCounts are what jax_llm_server.py says it served.
type jaxLLMCounts struct {
	Requests     int64 `json:"requests"`
	OutputTokens int64 `json:"output_tokens"`
}

func readJAXLLMCounts(t *testing.T, base string) jaxLLMCounts {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c jaxLLMCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("%s/counts: %v", base, err)
	}
	return c
}

// TestJAXLLMServerProfiledUnderStreamingLoad is issue #20's profile window
// through the TSL ProfilerService of a JAX-based LLM server:
// jax_llm_server.py streams chat completions, one jit-compiled decode step
// a token, and serves jax.profiler's ProfilerService. loadprof (bench.Run)
// drives streamed chat at a fixed rate and opens the window through the
// ProfilerService in the steady load: the trace it saves holds the decode
// step's program (its HLO proto, and its XLA executions in the window),
// xprof's trace viewer opens it, the window's requests are counted apart
// with their stream figures, and the requests and output tokens loadprof
// counts are the server's own.
func TestJAXLLMServerProfiledUnderStreamingLoad(t *testing.T) {
	ready := startXLAProgram(t, "LOADPROF_PYTHON_JAX", "jax_llm_server.py",
		"scripts/test.sh sets it from scripts/pyenv-jax.sh, which needs a Python 3.12")
	base := fmt.Sprintf("http://127.0.0.1:%d", ready.HTTP)
	const maxTokens = 8
	body := map[string]any{
		"model":          "jax-tiny",
		"messages":       []map[string]string{{"role": "user", "content": "where does the time go"}},
		"max_tokens":     maxTokens,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
	}
	raw, _ := json.Marshal(body)
	data := filepath.Join(t.TempDir(), "chat.json")
	if err := os.WriteFile(data, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	logdir := t.TempDir()
	before := readJAXLLMCounts(t, base)
	res, err := bench.Run(context.Background(), bench.Config{
		URL: base + "/v1/chat/completions", DataPath: data, Timeout: 30 * time.Second,
		Plan: load.Plan{Rate: 20, Duration: 5 * time.Second, MaxInflight: 32, Grace: 30 * time.Second},
		Profile: &bench.ProfileConfig{Addr: addr(ready.Profiler), Delay: time.Second, Required: true,
			Options: profile.Options{Duration: 2 * time.Second, LogDir: logdir}},
	})
	if err != nil {
		t.Fatalf("bench.Run: %v", err)
	}
	after := readJAXLLMCounts(t, base)

	p := res.Profile
	if p == nil || p.Result == nil || p.Error != "" || len(p.TraceFiles()) != 1 {
		t.Fatalf("profile report %+v", p)
	}
	trace := p.TraceFiles()[0]
	if !strings.HasPrefix(trace, filepath.Join(logdir, "plugins", "profile")) {
		t.Errorf("trace %s is not under the logdir's plugins/profile", trace)
	}
	space := readSpace(t, trace)
	hasStep := false
	for _, m := range hloModules(space) {
		hasStep = hasStep || strings.HasPrefix(m, "jit_decode_step")
	}
	if !hasStep {
		t.Errorf("the trace has no HLO proto of jit_decode_step (planes %v, modules %v)", planeNames(space), hloModules(space))
	}
	// The decode step's executions during the window: the server's Python
	// threads record one PjitFunction(decode_step) event a call.
	steps := 0
	for _, plane := range space.GetPlanes() {
		for _, line := range plane.GetLines() {
			for _, e := range line.GetEvents() {
				if plane.GetEventMetadata()[e.GetMetadataId()].GetName() == "PjitFunction(decode_step)" {
					steps++
				}
			}
		}
	}
	if res.Window == nil || res.Window.Requests == 0 || res.LLMWindow == nil || res.LLMWindow.Requests == 0 {
		t.Fatalf("no request in the window: %+v %+v", res.Window, res.LLMWindow)
	}
	// Every token of a request that streamed wholly inside the window was
	// a traced step; the window counts requests sent in it, some of which
	// were partly outside.
	if steps == 0 || int64(steps) > (res.LLMWindow.OutputTokens+2*maxTokens)*3 {
		t.Errorf("%d decode steps traced for %d output tokens in the window", steps, res.LLMWindow.OutputTokens)
	}
	if tools := xprofTools(t, trace); !contains(tools, "trace_viewer@") {
		t.Errorf("xprof offers %v for the trace, not trace_viewer@", tools)
	}

	if len(res.Errors) != 0 || res.OutputTokens == nil || res.TTFT == nil || res.ITL == nil {
		t.Fatalf("errors %v, output tokens %v, ttft %v, itl %v", res.Errors, res.OutputTokens, res.TTFT, res.ITL)
	}
	// The server served one request more than the run counts: the
	// checking request bench.Run sends before the load.
	served := after.Requests - before.Requests - 1
	generated := after.OutputTokens - before.OutputTokens - maxTokens
	if res.Requests != served || *res.OutputTokens != generated || generated != served*maxTokens {
		t.Errorf("loadprof: %d requests, %d output tokens; the server: %d requests, %d tokens (less the checking request)",
			res.Requests, *res.OutputTokens, served, generated)
	}
	t.Logf("%d requests (window %d), %d tokens; %d decode steps traced; TTFT p50 %.3f ms, ITL p50 %.3f ms",
		res.Requests, res.Window.Requests, *res.OutputTokens, steps, res.TTFT.P50, res.ITL.P50)
}
