package sim

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event of a stream as a client read it.
type sseEvent struct {
	data string
	doc  map[string]any // nil when data is not JSON
}

// readSSE posts body to path and reads the event stream to its end; err
// is how the read ended when it did not end cleanly.
func readSSE(t *testing.T, ctx context.Context, s *Server, path, body string) (*http.Response, []sseEvent, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.RESTAddr()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			if line != "" {
				t.Errorf("a line that is not an SSE data field: %q", line)
			}
			continue
		}
		ev := sseEvent{data: data}
		if json.Unmarshal([]byte(data), &ev.doc) != nil {
			ev.doc = nil
		}
		events = append(events, ev)
	}
	return resp, events, sc.Err()
}

func startLLM(t *testing.T, l LLM) *Server {
	t.Helper()
	if l.KeepStreams == 0 {
		l.KeepStreams = 100
	}
	return start(t, Config{Model: "tiny", LLM: l})
}

// streamsWhenKept waits (bounded) until the server has kept n records: a
// client may see a stream end a moment before the server's writer returns.
func streamsWhenKept(t *testing.T, s *Server, n int) []LLMStream {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := s.LLMStreams()
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) < n {
				t.Fatalf("%d records kept, want %d", len(recs), n)
			}
			return recs
		}
		time.Sleep(time.Millisecond)
	}
}

func choice(ev sseEvent) map[string]any {
	cs, _ := ev.doc["choices"].([]any)
	if len(cs) == 0 {
		return nil
	}
	c, _ := cs[0].(map[string]any)
	return c
}

func TestOpenAICompletionStreamIsChunkedLikeVLLM(t *testing.T) {
	s := startLLM(t, LLM{TTFT: 2 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 8})
	resp, events, err := readSSE(t, context.Background(), s, "/v1/completions",
		`{"model": "tiny", "prompt": "one two three four five", "max_tokens": 5, "stream": true, "stream_options": {"include_usage": true}}`)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	// 5 tokens, the usage chunk, [DONE].
	if len(events) != 7 || events[6].data != "[DONE]" {
		t.Fatalf("events: %+v", events)
	}
	var text strings.Builder
	for i, ev := range events[:5] {
		c := choice(ev)
		if ev.doc["object"] != "text_completion" || ev.doc["model"] != "tiny" || c == nil {
			t.Fatalf("chunk %d: %s", i, ev.data)
		}
		text.WriteString(c["text"].(string))
		want := any(nil)
		if i == 4 {
			want = "length" // max_tokens 5 capped the 8
		}
		if c["finish_reason"] != want {
			t.Errorf("chunk %d finish_reason %v, want %v", i, c["finish_reason"], want)
		}
	}
	if text.String() != " the quick brown fox jumps" {
		t.Errorf("text %q", text.String())
	}
	usage, _ := events[5].doc["usage"].(map[string]any)
	if usage["prompt_tokens"] != 5.0 || usage["completion_tokens"] != 5.0 || usage["total_tokens"] != 10.0 || len(events[5].doc["choices"].([]any)) != 0 {
		t.Errorf("usage chunk: %s", events[5].data)
	}
	recs := streamsWhenKept(t, s, 1)
	if len(recs) != 1 || recs[0].Sent != 5 || len(recs[0].Gaps) != 4 || !recs[0].Stream || recs[0].Err != "" {
		t.Fatalf("records: %+v", recs)
	}
}

func TestOpenAIStreamHeadersGoOutBeforeTheFirstToken(t *testing.T) {
	s := startLLM(t, LLM{TTFT: time.Hour, TokenDelay: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.OpenAIBaseURL()+"/completions", strings.NewReader(`{"model": "tiny", "prompt": "x", "stream": true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no response head while the first token is an hour away: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestOpenAIChatStreamSendsTheRoleFirstAndStopsAtItsLength(t *testing.T) {
	s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 3, InputTokensPerWord: 1.5})
	_, events, err := readSSE(t, context.Background(), s, "/v1/chat/completions",
		`{"model": "tiny", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi there you"}]}], "max_tokens": 100, "stream": true}`)
	if err != nil {
		t.Fatal(err)
	}
	// The role, 3 tokens, [DONE]; no usage chunk unless asked for.
	if len(events) != 5 || events[4].data != "[DONE]" {
		t.Fatalf("events: %+v", events)
	}
	first := choice(events[0])["delta"].(map[string]any)
	if first["role"] != "assistant" || first["content"] != "" || events[0].doc["object"] != "chat.completion.chunk" {
		t.Errorf("first chunk: %s", events[0].data)
	}
	for i, ev := range events[1:4] {
		d := choice(ev)["delta"].(map[string]any)
		if d["content"] != tokenText(i) || d["role"] != nil {
			t.Errorf("token chunk %d: %s", i, ev.data)
		}
	}
	if fr := choice(events[3])["finish_reason"]; fr != "stop" {
		t.Errorf("last finish_reason %v, want stop (3 tokens under max_tokens 100)", fr)
	}
	// 5 words × 1.5 = 7.5 → 8 prompt tokens.
	if recs := streamsWhenKept(t, s, 1); len(recs) != 1 || recs[0].PromptTokens != 8 {
		t.Errorf("records: %+v", recs)
	}
}

func TestOpenAIWholeAnswersCarryUsage(t *testing.T) {
	s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4})
	status, doc, raw := call(t, "POST", s.OpenAIBaseURL()+"/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "a b"}]}`)
	if status != 200 || doc["object"] != "chat.completion" {
		t.Fatalf("%d %s", status, raw)
	}
	c := doc["choices"].([]any)[0].(map[string]any)
	msg := c["message"].(map[string]any)
	if msg["content"] != " the quick brown fox" || msg["role"] != "assistant" || c["finish_reason"] != "stop" {
		t.Errorf("choice: %s", raw)
	}
	u := doc["usage"].(map[string]any)
	if u["prompt_tokens"] != 2.0 || u["completion_tokens"] != 4.0 || u["total_tokens"] != 6.0 {
		t.Errorf("usage: %s", raw)
	}
	status, doc, raw = call(t, "POST", s.OpenAIBaseURL()+"/completions", `{"model": "tiny", "prompt": [1, 2, 3], "max_tokens": 2}`)
	c = doc["choices"].([]any)[0].(map[string]any)
	if status != 200 || c["text"] != " the quick" || c["finish_reason"] != "length" || doc["usage"].(map[string]any)["prompt_tokens"] != 3.0 {
		t.Errorf("%d %s", status, raw)
	}
	recs := s.LLMStreams()
	if len(recs) != 2 || recs[0].Stream || recs[0].FirstToken < 4*time.Millisecond {
		t.Errorf("records: %+v (the whole answer waits for its last token, 1ms + 3×1ms)", recs)
	}
}

func TestOpenAIErrorsAreOpenAIErrorObjects(t *testing.T) {
	s := startLLM(t, LLM{})
	base := s.OpenAIBaseURL()
	cases := []struct {
		path, body string
		status     int
		typ, msg   string
	}{
		{"/completions", `{"model": "other", "prompt": "x"}`, 404, "NotFoundError", "The model `other` does not exist."},
		{"/completions", `{"model": "tiny"}`, 400, "BadRequestError", `"prompt" is missing`},
		{"/chat/completions", `{"model": "tiny", "prompt": "x"}`, 400, "BadRequestError", `"prompt" belongs to /v1/completions`},
		{"/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}`, 400, "BadRequestError", `only allowed with "stream": true`},
		{"/completions", `{"model": "tiny", "prompt": "x", "n": 2}`, 400, "BadRequestError", "one choice"},
		{"/completions", `{"model": "tiny", "prompt": ["a", "b"]}`, 400, "BadRequestError", "one prompt"},
	}
	for _, c := range cases {
		status, doc, raw := call(t, "POST", base+c.path, c.body)
		e, _ := doc["error"].(map[string]any)
		if status != c.status || e == nil || e["type"] != c.typ || e["code"] != float64(c.status) || !strings.Contains(e["message"].(string), c.msg) {
			t.Errorf("%s %s: %d %s, want %d %s %q", c.path, c.body, status, raw, c.status, c.typ, c.msg)
		}
	}
	status, _, raw := call(t, "GET", base+"/completions", "")
	if status != 405 {
		t.Errorf("GET /v1/completions: %d %s", status, raw)
	}
}

func TestOpenAISimulatedFailuresUseTheErrorRateAndStatus(t *testing.T) {
	s := start(t, Config{Model: "tiny", Latency: Latency{ErrorRate: 1, ErrorStatus: 429}, LLM: LLM{KeepStreams: 10}})
	status, doc, raw := call(t, "POST", s.OpenAIBaseURL()+"/completions", `{"model": "tiny", "prompt": "x", "stream": true}`)
	if e, _ := doc["error"].(map[string]any); status != 429 || e["type"] != "RateLimitError" {
		t.Errorf("%d %s", status, raw)
	}
	if recs := s.LLMStreams(); len(recs) != 1 || recs[0].Fault != "error" || recs[0].Status != 429 {
		t.Errorf("records: %+v", recs)
	}
}

func TestOpenAIModelsListsTheServedModel(t *testing.T) {
	s := startLLM(t, LLM{})
	status, doc, raw := call(t, "GET", s.OpenAIBaseURL()+"/models", "")
	data, _ := doc["data"].([]any)
	if status != 200 || doc["object"] != "list" || len(data) != 1 || data[0].(map[string]any)["id"] != "tiny" {
		t.Errorf("%d %s", status, raw)
	}
}

func TestOpenAITokensGoOutNoEarlierThanTheirSchedule(t *testing.T) {
	l := LLM{TTFT: 10 * time.Millisecond, TokenDelay: 3 * time.Millisecond, TokenJitter: 2 * time.Millisecond, Seed: 7, OutputTokens: 20}
	s := startLLM(t, l)
	if _, _, err := readSSE(t, context.Background(), s, "/v1/completions", `{"model": "tiny", "prompt": "x", "stream": true}`); err != nil {
		t.Fatal(err)
	}
	rec := streamsWhenKept(t, s, 1)[0]
	if len(rec.Planned) != 19 || len(rec.Gaps) != 19 || rec.FirstToken < l.TTFT {
		t.Fatalf("record: %+v", rec)
	}
	// A timer never fires early: token k leaves no earlier than TTFT plus
	// the first k planned gaps, however late the machine is.
	at, due := rec.FirstToken, l.TTFT
	jittered := false
	for k, g := range rec.Planned {
		if g < l.TokenDelay-l.TokenJitter || g > l.TokenDelay+l.TokenJitter {
			t.Errorf("planned gap %d is %v, outside %v ± %v", k, g, l.TokenDelay, l.TokenJitter)
		}
		jittered = jittered || g != l.TokenDelay
		at, due = at+rec.Gaps[k], due+g
		if at < due {
			t.Errorf("token %d left at %v, before its due time %v", k+1, at, due)
		}
	}
	if !jittered {
		t.Error("no planned gap was jittered")
	}
	// The same seed plans the same gaps.
	s2 := startLLM(t, l)
	if _, _, err := readSSE(t, context.Background(), s2, "/v1/completions", `{"model": "tiny", "prompt": "x", "stream": true}`); err != nil {
		t.Fatal(err)
	}
	for k, g := range streamsWhenKept(t, s2, 1)[0].Planned {
		if g != rec.Planned[k] {
			t.Fatalf("seed 7 planned gap %d as %v, then as %v", k, rec.Planned[k], g)
		}
	}
}

func TestOpenAIStreamFaults(t *testing.T) {
	const body = `{"model": "tiny", "prompt": "x", "stream": true}`
	t.Run("close", func(t *testing.T) {
		s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 6, Faults: StreamFaults{CloseRate: 1}})
		_, events, err := readSSE(t, context.Background(), s, "/v1/completions", body)
		if err == nil || len(events) != 3 {
			t.Fatalf("read ended with %v after %d events, want an error after 3 (half of 6)", err, len(events))
		}
		if rec := streamsWhenKept(t, s, 1)[0]; rec.Fault != "close" || rec.Sent != 3 {
			t.Errorf("record: %+v", rec)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 6, Faults: StreamFaults{MalformedRate: 1, After: 2}})
		_, events, err := readSSE(t, context.Background(), s, "/v1/completions", body)
		if err != nil || len(events) != 8 || events[2].doc != nil || events[7].data != "[DONE]" {
			t.Fatalf("%v: %+v, want 2 tokens, a data line that is not JSON, 4 tokens, [DONE]", err, events)
		}
		if rec := streamsWhenKept(t, s, 1)[0]; rec.Fault != "malformed" || rec.Sent != 6 {
			t.Errorf("record: %+v", rec)
		}
	})
	t.Run("stall", func(t *testing.T) {
		stall := 150 * time.Millisecond
		s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4, Faults: StreamFaults{StallRate: 1, Stall: stall, After: 1}})
		_, events, err := readSSE(t, context.Background(), s, "/v1/completions", body)
		if err != nil || len(events) != 5 {
			t.Fatalf("%v: %+v", err, events)
		}
		rec := streamsWhenKept(t, s, 1)[0]
		if rec.Fault != "stall" || len(rec.Gaps) != 3 {
			t.Fatalf("record: %+v", rec)
		}
		// Every token after the first leaves no earlier than its due time
		// moved by the stall.
		at, due := rec.FirstToken, time.Millisecond+stall
		for k, g := range rec.Gaps {
			at, due = at+g, due+rec.Planned[k]
			if at < due {
				t.Errorf("token %d left %v after arrival, before its due time moved by the stall, %v: %+v", k+1, at, due, rec)
			}
		}
	})
	t.Run("stall outlasting the client", func(t *testing.T) {
		s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4, Faults: StreamFaults{StallRate: 1, Stall: time.Hour, After: 2}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.OpenAIBaseURL()+"/completions", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for n := 0; n < 2 && sc.Scan(); {
			if sc.Text() != "" {
				n++
			}
		}
		cancel()
		resp.Body.Close()
		// Close ends the stalled stream (within its grace) and keeps its record.
		done := make(chan struct{})
		go func() { s.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not end a stalled stream")
		}
		if rec := s.LLMStreams(); len(rec) != 1 || rec[0].Sent != 2 || rec[0].Err == "" {
			t.Errorf("records: %+v", rec)
		}
	})
}

func TestOpenAIProfilerControlWritesATraceOfTheWindow(t *testing.T) {
	dir := t.TempDir()
	var told []string
	s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: dir, OnTrace: func(p string) { told = append(told, p) }})
	base := "http://" + s.RESTAddr()
	// vLLM ignores a stop with no session open: 200.
	if status, _, raw := call(t, "POST", base+"/stop_profile", ""); status != 200 || raw != "" {
		t.Errorf("stop before start: %d %s", status, raw)
	}
	if len(s.LLMTraces()) != 0 {
		t.Errorf("a stop with no session wrote %v", s.LLMTraces())
	}
	if status, _, raw := call(t, "POST", base+"/start_profile", `{"profile_prefix": "run-1.a"}`); status != 200 || raw != "" {
		t.Fatalf("start: %d %q", status, raw)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := readSSE(t, context.Background(), s, "/v1/completions", `{"model": "tiny", "prompt": "x", "stream": true}`); err != nil {
			t.Fatal(err)
		}
	}
	streamsWhenKept(t, s, 3) // each request's trace event is written as its stream ends
	if status, _, raw := call(t, "POST", base+"/stop_profile", ""); status != 200 || raw != "" {
		t.Fatalf("stop: %d %q", status, raw)
	}
	traces := s.LLMTraces()
	if len(traces) != 1 || len(told) != 1 || told[0] != traces[0] || !strings.HasSuffix(traces[0], ".pt.trace.json.gz") ||
		!strings.HasPrefix(traces[0], filepath.Join(dir, "run-1.a_")) {
		t.Fatalf("traces %v, told %v", traces, told)
	}
	f, err := os.Open(traces[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	var doc struct {
		TraceEvents []struct {
			Name string
			Ph   string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	requests := 0
	for _, e := range doc.TraceEvents {
		if strings.HasPrefix(e.Name, "cmpl-") {
			requests++
		}
	}
	if requests != 3 {
		t.Errorf("%d request events in the trace, want 3: %s", requests, raw)
	}
	// Without a profile directory the routes are absent, as on vLLM
	// without its profiler.
	s2 := startLLM(t, LLM{})
	if status, _, _ := call(t, "POST", "http://"+s2.RESTAddr()+"/start_profile", ""); status != 404 {
		t.Errorf("start_profile without ProfileDir: %d, want 404", status)
	}
}

func TestLLMSettingsOutOfRangeAreRefused(t *testing.T) {
	for _, l := range []LLM{
		{TTFT: -1},
		{TokenDelay: time.Millisecond, TokenJitter: 2 * time.Millisecond},
		{OutputTokens: -1},
		{InputTokensPerWord: -1},
		{Faults: StreamFaults{StallRate: 0.6, CloseRate: 0.6}},
	} {
		if s, err := StartLoopback(Config{LLM: l}); err == nil {
			s.Close()
			t.Errorf("%+v: started", l)
		}
	}
}

// BenchmarkOpenAIStreamTokens measures the simulator's cost per streamed
// token, with tokens due back to back: one op is one token written and
// flushed (a chunk, the client reading it raw).
func BenchmarkOpenAIStreamTokens(b *testing.B) {
	const perStream = 1000
	s, err := StartLoopback(Config{Model: "tiny", LLM: LLM{TTFT: time.Nanosecond, TokenDelay: time.Nanosecond, OutputTokens: perStream}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	body := `{"model": "tiny", "prompt": "x", "stream": true, "max_tokens": ` + strconv.Itoa(perStream) + `}`
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += perStream {
		n := min(perStream, b.N-sent)
		req, _ := http.NewRequest("POST", s.OpenAIBaseURL()+"/completions", strings.NewReader(strings.Replace(body, strconv.Itoa(perStream), strconv.Itoa(n), 1)))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

func TestOpenAIWholeAnswersPlayTheFaultsToo(t *testing.T) {
	const body = `{"model": "tiny", "prompt": "x"}`
	fast := LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 4}
	closing := fast
	closing.Faults.CloseRate = 1
	s := startLLM(t, closing)
	if resp, err := http.Post(s.OpenAIBaseURL()+"/completions", "application/json", strings.NewReader(body)); err == nil {
		resp.Body.Close()
		t.Errorf("close fault: got a response, status %d", resp.StatusCode)
	}
	garbling := fast
	garbling.Faults.MalformedRate = 1
	s = startLLM(t, garbling)
	status, doc, raw := call(t, "POST", s.OpenAIBaseURL()+"/completions", body)
	if status != 200 || doc != nil || !strings.HasPrefix(raw, `{"id":"cmpl-1"`) {
		t.Errorf("malformed fault: %d %q, want a 200 whose body is cut short", status, raw)
	}
	stalling := fast
	stalling.Faults = StreamFaults{StallRate: 1, Stall: 100 * time.Millisecond}
	s = startLLM(t, stalling)
	if status, _, raw := call(t, "POST", s.OpenAIBaseURL()+"/completions", body); status != 200 {
		t.Errorf("stall fault: %d %s", status, raw)
	}
	if rec := streamsWhenKept(t, s, 1)[0]; rec.FirstToken < 4*time.Millisecond+100*time.Millisecond {
		t.Errorf("stall fault: answered after %v, want at least the last token's due time plus the stall", rec.FirstToken)
	}
}

// BenchmarkOpenAITokenLateness streams to 50 clients at once, a token every
// 5ms each (10000 tokens/s in all), and reports how late the simulator's
// token writes were against their due times: the error the simulator adds
// to the TTFT and inter-token gaps it is configured with.
func BenchmarkOpenAITokenLateness(b *testing.B) {
	const streams, tokens = 50, 100
	l := LLM{TTFT: 20 * time.Millisecond, TokenDelay: 5 * time.Millisecond, OutputTokens: tokens, KeepStreams: 1 << 20}
	s, err := StartLoopback(Config{Model: "tiny", LLM: l})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, DisableCompression: true}}
	body := `{"model": "tiny", "prompt": "x", "stream": true}`
	for i := 0; i < b.N; i++ {
		done := make(chan error, streams)
		for j := 0; j < streams; j++ {
			go func() {
				resp, err := client.Post(s.OpenAIBaseURL()+"/completions", "application/json", strings.NewReader(body))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
		}
		for j := 0; j < streams; j++ {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	var late []time.Duration
	for _, rec := range s.LLMStreams() {
		at, due := rec.FirstToken, l.TTFT
		late = append(late, at-due)
		for k, g := range rec.Gaps {
			at, due = at+g, due+rec.Planned[k]
			late = append(late, at-due)
		}
	}
	slices.Sort(late)
	var sum time.Duration
	for _, d := range late {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(late)), "late-mean-µs")
	b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "late-p99-µs")
	b.ReportMetric(float64(late[len(late)-1].Microseconds()), "late-max-µs")
}

// The profiler control answers what vLLM 0.32's does: its body's fields
// checked strictly (400), a second start 409 with vLLM's error, a stop
// with nothing open 200.
func TestOpenAIProfilerControlAnswersAsVLLM(t *testing.T) {
	s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: t.TempDir()})
	base := "http://" + s.RESTAddr()
	for _, c := range []struct {
		body     string
		status   int
		contains string
	}{
		{`{"profile_prefix": "_x"}`, 400, "profile_prefix must be"},
		{`{"profile_prefix": "a/b"}`, 400, "profile_prefix must be"},
		{`{"profile_prefix": 7}`, 400, "body.profile_prefix"},
		{`{"delay_iterations": "3"}`, 400, "body.delay_iterations"},
		{`{"max_iterations": 1.5}`, 400, "body.max_iterations"},
		{`{"delay_iterations": -1}`, 400, "delay_iterations must be greater than or equal to 0"},
		{`{"max_iterations": -2}`, 400, "max_iterations must be greater than or equal to 0"},
		{`[1]`, 400, "JSON object"},
		{`{"profile_prefix"`, 400, "JSON object"},
	} {
		status, doc, raw := call(t, "POST", base+"/start_profile", c.body)
		if status != c.status || !strings.Contains(raw, c.contains) {
			t.Errorf("start %s: %d %s, want %d with %q", c.body, status, raw, c.status, c.contains)
		}
		if e, _ := doc["error"].(map[string]any); e == nil || e["code"] != float64(c.status) {
			t.Errorf("start %s: error body %s", c.body, raw)
		}
	}
	// None of those opened a session; other fields are ignored.
	if status, _, raw := call(t, "POST", base+"/start_profile", `{"profile_prefix": null, "other": 1}`); status != 200 {
		t.Fatalf("start: %d %s", status, raw)
	}
	status, doc, raw := call(t, "POST", base+"/start_profile", "")
	if e, _ := doc["error"].(map[string]any); status != 409 || e == nil || e["type"] != "Conflict" || !strings.Contains(raw, "Call /stop_profile") {
		t.Errorf("second start: %d %s, want vLLM's 409", status, raw)
	}
	for i := 0; i < 2; i++ {
		if status, _, raw := call(t, "POST", base+"/stop_profile", ""); status != 200 {
			t.Errorf("stop %d: %d %s", i+1, status, raw)
		}
	}
	if n := len(s.LLMTraces()); n != 1 {
		t.Errorf("%d traces, want 1 (the second stop had no session)", n)
	}
	if starts, stops := s.ProfileCalls(); len(starts) != 1 || len(stops) != 2 {
		t.Errorf("%d starts, %d stops taken; want 1 and 2", len(starts), len(stops))
	}
}

// delay_iterations and max_iterations bound the recording inside a
// session, counting each token written as an iteration: the trace is
// written when max_iterations is reached, and the stop then writes none.
func TestOpenAIProfilerIterationBounds(t *testing.T) {
	s := startLLM(t, LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: t.TempDir()})
	base := "http://" + s.RESTAddr()
	if status, _, raw := call(t, "POST", base+"/start_profile", `{"profile_prefix": "it", "delay_iterations": 2, "max_iterations": 4}`); status != 200 {
		t.Fatalf("start: %d %s", status, raw)
	}
	stream := func(i int) {
		if _, _, err := readSSE(t, context.Background(), s, "/v1/completions", `{"model": "tiny", "prompt": "x", "stream": true}`); err != nil {
			t.Fatal(err)
		}
		streamsWhenKept(t, s, i)
	}
	// Stream 1's two tokens are the delay; it ends recorded. Streams 2
	// and 3 are the four iterations: the last token of stream 3 ends the
	// recording before stream 3 ends.
	for i := 1; i <= 3; i++ {
		stream(i)
		if n := len(s.LLMTraces()); (i < 3 && n != 0) || (i == 3 && n != 1) {
			t.Fatalf("after stream %d: %d traces", i, n)
		}
	}
	stream(4)
	if status, _, _ := call(t, "POST", base+"/start_profile", ""); status != 409 {
		t.Errorf("start after max_iterations, before the stop: %d, want 409 (the session lasts until /stop_profile)", status)
	}
	if status, _, _ := call(t, "POST", base+"/stop_profile", ""); status != 200 {
		t.Errorf("stop: %d", status)
	}
	traces := s.LLMTraces()
	if len(traces) != 1 || !strings.HasPrefix(filepath.Base(traces[0]), "it_") {
		t.Fatalf("traces %v, want one named it_*", traces)
	}
	if n := simTraceRequests(t, traces[0]); n != 2 {
		t.Errorf("the trace holds %d requests, want 2 (streams 1 and 2)", n)
	}
}

// simTraceRequests reads the request count of a simulated trace.
func simTraceRequests(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []struct {
			Name string         `json:"name"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.NewDecoder(zr).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.TraceEvents {
		if e.Name == "profile window" {
			return int(e.Args["requests"].(float64))
		}
	}
	t.Fatalf("%s has no profile window event", path)
	return 0
}
