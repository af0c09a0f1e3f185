package conformance

// The official OpenAI Python client (conformance/openai_client.py, venv
// from scripts/pyenv-llm.sh, LOADPROF_PYTHON_LLM) against the simulator's
// OpenAI-compatible routes: what the client makes of the streams, the
// whole answers and the errors, compared with what the simulator recorded
// it did.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

func needLLM(t *testing.T) string {
	t.Helper()
	py := os.Getenv("LOADPROF_PYTHON_LLM")
	if py == "" {
		t.Skip("LOADPROF_PYTHON_LLM is not set (scripts/test.sh sets it from scripts/pyenv-llm.sh)")
	}
	return py
}

type openAICase struct {
	Name     string         `json:"name"`
	BaseURL  string         `json:"base_url"`
	Model    string         `json:"model"`
	Endpoint string         `json:"endpoint"` // "chat" or "completions"
	Stream   bool           `json:"stream"`
	Args     map[string]any `json:"args,omitempty"`
	Timeout  float64        `json:"timeout,omitempty"`
}

type openAIChunk struct {
	AtNS         int64          `json:"at_ns"`
	ID           string         `json:"id"`
	Object       string         `json:"object"`
	Content      *string        `json:"content"`
	Role         *string        `json:"role"`
	FinishReason *string        `json:"finish_reason"`
	Usage        map[string]int `json:"usage"`
}

type openAIOutcome struct {
	Name         string         `json:"name"`
	SentNS       int64          `json:"sent_ns"`
	ID           string         `json:"id"`
	Object       string         `json:"object"`
	Text         string         `json:"text"`
	Role         string         `json:"role"`
	FinishReason string         `json:"finish_reason"`
	Chunks       []openAIChunk  `json:"chunks"`
	Usage        map[string]int `json:"usage"`
	Error        *struct {
		Class    string `json:"class"`
		Module   string `json:"module"`
		IsOpenAI bool   `json:"is_openai"`
		Status   *int   `json:"status"`
		Message  string `json:"message"`
	} `json:"error"`
}

func runOpenAIClient(t *testing.T, py string, cases []openAICase) map[string]openAIOutcome {
	t.Helper()
	arg, _ := json.Marshal(cases)
	cmd := exec.Command(py, filepath.Join(".", "openai_client.py"), string(arg))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("openai_client.py did not finish in 5 minutes; stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("openai_client.py: %v; stderr:\n%s", err, stderr.String())
	}
	var outcomes []openAIOutcome
	if err := json.Unmarshal(out, &outcomes); err != nil {
		t.Fatalf("openai_client.py printed %q: %v", out, err)
	}
	byName := map[string]openAIOutcome{}
	for _, o := range outcomes {
		byName[o.Name] = o
	}
	return byName
}

func startLLMSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	cfg.Model = "tiny"
	cfg.LLM.KeepStreams = 100
	s, err := sim.StartLoopback(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recordOf finds the simulator's record of the answer with this id,
// waiting (bounded) for the writer to finish it.
func recordOf(t *testing.T, s *sim.Server, id string) sim.LLMStream {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range s.LLMStreams() {
			if r.ID == id {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator kept no record of %q: %+v", id, s.LLMStreams())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOpenAIClientReadsTheSimulatorsStreamsAndErrors(t *testing.T) {
	py := needLLM(t)
	llm := sim.LLM{TTFT: 40 * time.Millisecond, TokenDelay: 25 * time.Millisecond, TokenJitter: 5 * time.Millisecond, Seed: 3, OutputTokens: 8}
	main := startLLMSim(t, sim.Config{LLM: llm})
	unavailable := startLLMSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 1, ErrorStatus: 503}})
	limited := startLLMSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 1, ErrorStatus: 429}})
	fast := sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 6}
	closing := fast
	closing.Faults = sim.StreamFaults{CloseRate: 1, After: 3}
	closer := startLLMSim(t, sim.Config{LLM: closing})
	garbling := fast
	garbling.Faults = sim.StreamFaults{MalformedRate: 1, After: 2}
	garbler := startLLMSim(t, sim.Config{LLM: garbling})
	stalling := fast
	stalling.Faults = sim.StreamFaults{StallRate: 1, Stall: time.Hour, After: 2}
	staller := startLLMSim(t, sim.Config{LLM: stalling})

	usage := map[string]any{"include_usage": true}
	chat := []map[string]string{{"role": "user", "content": "hello there"}}
	cases := []openAICase{
		{Name: "chat stream", BaseURL: main.OpenAIBaseURL(), Model: "tiny", Endpoint: "chat", Stream: true,
			Args: map[string]any{"messages": chat, "max_tokens": 6, "stream_options": usage}},
		{Name: "completions stream", BaseURL: main.OpenAIBaseURL(), Model: "tiny", Endpoint: "completions", Stream: true,
			Args: map[string]any{"prompt": "one two three", "stream_options": usage}},
		{Name: "chat whole", BaseURL: main.OpenAIBaseURL(), Model: "tiny", Endpoint: "chat", Args: map[string]any{"messages": chat, "max_tokens": 3}},
		{Name: "completions whole", BaseURL: main.OpenAIBaseURL(), Model: "tiny", Endpoint: "completions", Args: map[string]any{"prompt": "a b c d"}},
		{Name: "unknown model", BaseURL: main.OpenAIBaseURL(), Model: "nope", Endpoint: "chat", Args: map[string]any{"messages": chat}},
		{Name: "bad max_tokens", BaseURL: main.OpenAIBaseURL(), Model: "tiny", Endpoint: "completions", Args: map[string]any{"prompt": "x", "max_tokens": 0}},
		{Name: "503", BaseURL: unavailable.OpenAIBaseURL(), Model: "tiny", Endpoint: "chat", Stream: true, Args: map[string]any{"messages": chat}},
		{Name: "429", BaseURL: limited.OpenAIBaseURL(), Model: "tiny", Endpoint: "completions", Stream: true, Args: map[string]any{"prompt": "x"}},
		{Name: "close", BaseURL: closer.OpenAIBaseURL(), Model: "tiny", Endpoint: "completions", Stream: true, Args: map[string]any{"prompt": "x"}},
		{Name: "malformed", BaseURL: garbler.OpenAIBaseURL(), Model: "tiny", Endpoint: "chat", Stream: true, Args: map[string]any{"messages": chat}},
		{Name: "stall", BaseURL: staller.OpenAIBaseURL(), Model: "tiny", Endpoint: "completions", Stream: true, Args: map[string]any{"prompt": "x"}, Timeout: 1},
	}
	got := runOpenAIClient(t, py, cases)

	t.Run("streams", func(t *testing.T) {
		for _, c := range []struct {
			name, object, finish string
			tokens, prompt       int
			role                 bool
		}{
			{"chat stream", "chat.completion.chunk", "length", 6, 2, true},
			{"completions stream", "text_completion", "stop", 8, 3, false},
		} {
			o := got[c.name]
			if o.Error != nil || len(o.Chunks) == 0 {
				t.Errorf("%s: %+v", c.name, o)
				continue
			}
			rec := recordOf(t, main, o.Chunks[0].ID)
			var tokens []openAIChunk
			for i, ch := range o.Chunks {
				if ch.ID != rec.ID || ch.Object != c.object {
					t.Errorf("%s chunk %d: id %q object %q, want %q %q", c.name, i, ch.ID, ch.Object, rec.ID, c.object)
				}
				if ch.Content != nil && *ch.Content != "" {
					tokens = append(tokens, ch)
				}
			}
			if c.role && (o.Chunks[0].Role == nil || *o.Chunks[0].Role != "assistant") {
				t.Errorf("%s: the first delta has no assistant role: %+v", c.name, o.Chunks[0])
			}
			last := o.Chunks[len(o.Chunks)-1]
			if len(tokens) != c.tokens || tokens[len(tokens)-1].FinishReason == nil || *tokens[len(tokens)-1].FinishReason != c.finish {
				t.Errorf("%s: %d token chunks (want %d), the last's finish_reason %v (want %s)", c.name, len(tokens), c.tokens, tokens[len(tokens)-1].FinishReason, c.finish)
			}
			// Usage equals the chunks received, and the prompt's word count.
			if last.Usage == nil || last.Usage["completion_tokens"] != len(tokens) || last.Usage["prompt_tokens"] != c.prompt || last.Usage["total_tokens"] != c.prompt+len(tokens) {
				t.Errorf("%s: usage %v, want %d completion and %d prompt tokens", c.name, last.Usage, len(tokens), c.prompt)
			}
			if rec.Sent != len(tokens) || len(rec.Gaps) != len(tokens)-1 {
				t.Fatalf("%s: the simulator sent %d tokens, the client read %d", c.name, rec.Sent, len(tokens))
			}
			// Times, all on this machine's clock. The client sent before the
			// simulator saw the request; a token reached the client no
			// earlier than its due time (the timer never fires early);
			// and each token reached it before the next was due, which a
			// server that buffered tokens instead of flushing each fails.
			arrived := main.Started().Add(rec.Arrived)
			if o.SentNS > arrived.UnixNano() {
				t.Errorf("%s: the client sent at %d, after the simulator's arrival at %d", c.name, o.SentNS, arrived.UnixNano())
			}
			if ttft := time.Duration(tokens[0].AtNS - o.SentNS); ttft < llm.TTFT {
				t.Errorf("%s: the client's TTFT %v is below the configured %v", c.name, ttft, llm.TTFT)
			}
			due := arrived.Add(llm.TTFT)
			early, beforeNext := 0, 0
			for k, tok := range tokens {
				if k > 0 {
					due = due.Add(rec.Planned[k-1])
					if g := rec.Planned[k-1]; g < llm.TokenDelay-llm.TokenJitter || g > llm.TokenDelay+llm.TokenJitter {
						t.Errorf("%s: planned gap %v outside %v ± %v", c.name, g, llm.TokenDelay, llm.TokenJitter)
					}
				}
				if tok.AtNS < due.UnixNano() {
					early++
				}
				if k+1 < len(tokens) && tok.AtNS < due.Add(rec.Planned[k]).UnixNano() {
					beforeNext++
				}
			}
			if early > 0 {
				t.Errorf("%s: %d tokens reached the client before they were due", c.name, early)
			}
			// A busy machine may delay the client past a 20ms gap now and
			// then; buffering delays every token.
			if beforeNext < (len(tokens)-1)/2 {
				t.Errorf("%s: only %d of %d tokens reached the client before the next was due", c.name, beforeNext, len(tokens)-1)
			}
		}
	})
	t.Run("whole answers", func(t *testing.T) {
		o := got["chat whole"]
		if o.Error != nil || o.Object != "chat.completion" || o.Role != "assistant" || o.Text != " the quick brown" || o.FinishReason != "length" ||
			o.Usage["prompt_tokens"] != 2 || o.Usage["completion_tokens"] != 3 || o.Usage["total_tokens"] != 5 {
			t.Errorf("chat whole: %+v", o)
		}
		o = got["completions whole"]
		if o.Error != nil || o.Object != "text_completion" || !strings.HasPrefix(o.Text, " the quick") || o.FinishReason != "stop" ||
			o.Usage["prompt_tokens"] != 4 || o.Usage["completion_tokens"] != 8 {
			t.Errorf("completions whole: %+v", o)
		}
		if rec := recordOf(t, main, o.ID); rec.Stream || rec.Sent != 8 {
			t.Errorf("record: %+v", rec)
		}
	})
	t.Run("errors are the client's own exceptions", func(t *testing.T) {
		for name, want := range map[string]struct {
			class  string
			status int
		}{
			"unknown model":  {"NotFoundError", 404},
			"bad max_tokens": {"BadRequestError", 400},
			"503":            {"InternalServerError", 503},
			"429":            {"RateLimitError", 429},
		} {
			e := got[name].Error
			if e == nil || e.Class != want.class || !e.IsOpenAI || e.Status == nil || *e.Status != want.status {
				t.Errorf("%s: raised %+v, want openai.%s with status %d", name, e, want.class, want.status)
			}
		}
		if e := got["unknown model"].Error; e != nil && !strings.Contains(e.Message, "The model `nope` does not exist.") {
			t.Errorf("unknown model: the client's message %q lost the server's", e.Message)
		}
	})
	t.Run("stream faults", func(t *testing.T) {
		for name, c := range map[string]struct {
			srv           *sim.Server
			tokens        int
			module, class string
		}{
			"close":     {closer, 3, "openai", "APIConnectionError"},
			"malformed": {garbler, 2, "json.decoder", "JSONDecodeError"},
			"stall":     {staller, 2, "openai", "APITimeoutError"}, // the client's 1s timeout
		} {
			o := got[name]
			if o.Error == nil || o.Error.Module != c.module || o.Error.Class != c.class {
				t.Errorf("%s: the client raised %+v, want %s.%s", name, o.Error, c.module, c.class)
				continue
			}
			n := 0
			for _, ch := range o.Chunks {
				if ch.Content != nil && *ch.Content != "" {
					n++
				}
			}
			if n != c.tokens {
				t.Errorf("%s: the client read %d tokens before %s, want %d", name, n, o.Error.Class, c.tokens)
			}
			t.Logf("%s: the client raised %s.%s after %d tokens: %s", name, o.Error.Module, o.Error.Class, n, o.Error.Message)
		}
	})
}
