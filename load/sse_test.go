package load

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// parsedEvent is a copy of an SSEEvent that outlives the parser's buffers.
type parsedEvent struct {
	Kind             SSEKind
	Tokens           int
	HasUsage         bool
	PromptTokens     int64
	CompletionTokens int64
	ErrorMessage     string
	ErrorCode        int64
	Data             string
}

func copyEvent(ev *SSEEvent) parsedEvent {
	return parsedEvent{ev.Kind, ev.Tokens, ev.HasUsage, ev.PromptTokens, ev.CompletionTokens, string(ev.ErrorMessage), ev.ErrorCode, string(ev.Data)}
}

// feedPieces feeds the pieces in order and returns the events and the
// first error.
func feedPieces(p *SSEParser, pieces ...[]byte) ([]parsedEvent, error) {
	var out []parsedEvent
	for _, b := range pieces {
		for len(b) > 0 {
			n, ev, err := p.Feed(b)
			if err != nil {
				return out, err
			}
			if n == 0 && ev == nil {
				return out, errors.New("Feed consumed nothing and returned no event")
			}
			b = b[n:]
			if ev != nil {
				out = append(out, copyEvent(ev))
			}
		}
	}
	return out, nil
}

// simBody posts body to the simulator over a raw connection and returns
// the response's event stream exactly as the server framed it, with the
// chunked transfer encoding taken off.
func simBody(t testing.TB, s *sim.Server, path, body string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.RESTAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, s.RESTAddr(), len(body), body)
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	head, rest, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no end of the response head in %q", raw)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), rest)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		return rest
	}
	b, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(rest)))
	if err != nil {
		t.Fatalf("dechunking %q: %v", rest, err)
	}
	return b
}

// keptStream waits (bounded) for the simulator's record of answer n (1-based).
func keptStream(t testing.TB, s *sim.Server, n int) sim.LLMStream {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs := s.LLMStreams(); len(recs) >= n {
			return recs[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator kept fewer than %d answers", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// streamTotals sums what a parsed stream said.
type streamTotals struct {
	tokens, contentChunks, malformed, done, errs int
	usage                                        bool
	prompt, completion                           int64
}

func totals(evs []parsedEvent) streamTotals {
	var s streamTotals
	for _, e := range evs {
		switch e.Kind {
		case SSEChunk:
			s.tokens += e.Tokens
			if e.Tokens > 0 {
				s.contentChunks++
			}
			if e.HasUsage {
				s.usage, s.prompt, s.completion = true, e.PromptTokens, e.CompletionTokens
			}
		case SSEDone:
			s.done++
		case SSEMalformed:
			s.malformed++
		case SSEError:
			s.errs++
		}
	}
	return s
}

// lineEnds rewrites a stream's LF line ends as CRLF or CR.
func lineEnds(b []byte, eol string) []byte {
	return bytes.ReplaceAll(b, []byte("\n"), []byte(eol))
}

func TestSSEParserCountsTheSimulatorsStreamsAtEverySplitPoint(t *testing.T) {
	s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{
		TTFT: time.Millisecond, TokenDelay: 100 * time.Microsecond, OutputTokens: 12, KeepStreams: 100,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cases := []struct {
		name, path, body string
		usage            bool
	}{
		{"completions with usage", "/v1/completions",
			`{"model":"tiny","prompt":"the quick brown fox","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"completions", "/v1/completions",
			`{"model":"tiny","prompt":"once upon a time","stream":true,"max_tokens":7}`, false},
		{"chat with usage", "/v1/chat/completions",
			`{"model":"tiny","messages":[{"role":"user","content":"say something short"}],"stream":true,"stream_options":{"include_usage":true}}`, true},
		{"chat", "/v1/chat/completions",
			`{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5}`, false},
	}
	for i, c := range cases {
		body := simBody(t, s, c.path, c.body)
		rec := keptStream(t, s, i+1)
		if rec.Err != "" || rec.Fault != "" {
			t.Fatalf("%s: the simulator's answer went wrong: %+v", c.name, rec)
		}
		for _, eol := range []string{"\n", "\r\n", "\r"} {
			stream := lineEnds(body, eol)
			var whole []parsedEvent
			for k := 0; k <= len(stream); k++ {
				var p SSEParser
				evs, err := feedPieces(&p, stream[:k], stream[k:])
				if err != nil {
					t.Fatalf("%s, line end %q, split at %d: %v", c.name, eol, k, err)
				}
				got := totals(evs)
				want := streamTotals{tokens: rec.Sent, contentChunks: rec.Sent, done: 1}
				if c.usage {
					want.usage, want.prompt, want.completion = true, int64(rec.PromptTokens), int64(rec.Sent)
				}
				if got != want {
					t.Fatalf("%s, line end %q, split at %d: got %+v, want %+v (simulator: %d tokens, %d prompt tokens)",
						c.name, eol, k, got, want, rec.Sent, rec.PromptTokens)
				}
				if k == 0 {
					whole = evs
				} else if fmt.Sprint(evs) != fmt.Sprint(whole) {
					t.Fatalf("%s, line end %q, split at %d: events differ from the unsplit stream's", c.name, eol, k)
				}
			}
			var p SSEParser
			pieces := make([][]byte, len(stream))
			for j := range stream {
				pieces[j] = stream[j : j+1]
			}
			evs, err := feedPieces(&p, pieces...)
			if err != nil || fmt.Sprint(evs) != fmt.Sprint(whole) {
				t.Fatalf("%s, line end %q, fed byte by byte: %v, events differ: %v", c.name, eol, err, fmt.Sprint(evs) != fmt.Sprint(whole))
			}
		}
		if strings.Contains(c.path, "chat") {
			var p SSEParser
			evs, _ := feedPieces(&p, body)
			if evs[0].Kind != SSEChunk || evs[0].Tokens != 0 || !strings.Contains(evs[0].Data, `"role":"assistant"`) {
				t.Errorf("%s: the role-only first delta is %+v, want a chunk without tokens", c.name, evs[0])
			}
		}
	}
}

func TestSSEParserCountsTheSimulatorsMalformedEventsApartAndKeepsTheTokens(t *testing.T) {
	s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{
		TTFT: time.Millisecond, TokenDelay: 100 * time.Microsecond, OutputTokens: 10, KeepStreams: 10,
		Faults: sim.StreamFaults{MalformedRate: 1, After: 4},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := simBody(t, s, "/v1/completions", `{"model":"tiny","prompt":"x","stream":true,"stream_options":{"include_usage":true}}`)
	rec := keptStream(t, s, 1)
	if rec.Fault != "malformed" {
		t.Fatalf("the simulator played fault %q", rec.Fault)
	}
	for k := 0; k <= len(body); k++ {
		var p SSEParser
		evs, err := feedPieces(&p, body[:k], body[k:])
		if err != nil {
			t.Fatal(err)
		}
		got := totals(evs)
		want := streamTotals{tokens: rec.Sent, contentChunks: rec.Sent, malformed: 1, done: 1, usage: true, prompt: int64(rec.PromptTokens), completion: int64(rec.Sent)}
		if got != want {
			t.Fatalf("split at %d: got %+v, want %+v", k, got, want)
		}
	}
}

func TestSSEParserReadsTheFieldsOfAnEventStream(t *testing.T) {
	cases := []struct {
		name   string
		stream string
		want   []parsedEvent
	}{
		{"data without the space, a comment and other fields",
			": keep-alive\nevent: message\nid: 7\nretry: 10\ndata:{\"choices\":[{\"text\":\"a\"}]}\n\n",
			[]parsedEvent{{Kind: SSEChunk, Tokens: 1, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"text":"a"}]}`}}},
		{"multi-line data is one document",
			"data: {\"choices\":\ndata: [{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
			[]parsedEvent{{Kind: SSEChunk, Tokens: 1, PromptTokens: -1, CompletionTokens: -1, Data: "{\"choices\":\n[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}"}}},
		{"multi-line data with CRLF and CR line ends",
			"data: {\"choices\":\r\ndata: [{\"text\":\"a\"}]}\r\n\r\ndata: {\"choices\":\rdata: []}\r\r",
			[]parsedEvent{
				{Kind: SSEChunk, Tokens: 1, PromptTokens: -1, CompletionTokens: -1, Data: "{\"choices\":\n[{\"text\":\"a\"}]}"},
				{Kind: SSEChunk, PromptTokens: -1, CompletionTokens: -1, Data: "{\"choices\":\n[]}"}}},
		{"a repeated member counts as its last, as encoding/json reads it",
			"data: {\"choices\":[{\"text\":\"a\"}],\"choices\":[]}\n\ndata: {\"choices\":[{\"text\":\"a\",\"text\":\"\"},{\"delta\":{\"content\":\"\",\"content\":\"b\"}}]}\n\n",
			[]parsedEvent{
				{Kind: SSEChunk, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"text":"a"}],"choices":[]}`},
				{Kind: SSEChunk, Tokens: 1, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"text":"a","text":""},{"delta":{"content":"","content":"b"}}]}`}}},
		{"empty, null and role-only content carry no tokens",
			"data: {\"choices\":[{\"text\":\"\"}]}\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":null}}],\"usage\":null}\n\ndata: {\"choices\":[{\"delta\":{}}]}\n\n",
			[]parsedEvent{
				{Kind: SSEChunk, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"text":""}]}`},
				{Kind: SSEChunk, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"delta":{"role":"assistant","content":null}}],"usage":null}`},
				{Kind: SSEChunk, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"delta":{}}]}`}}},
		{"one token per choice with content, escapes included",
			"data: {\"choices\":[{\"index\":0,\"text\":\"\\n\"},{\"index\":1,\"text\":\"\\u00e9\"},{\"index\":2,\"text\":\"\"}]}\n\n",
			[]parsedEvent{{Kind: SSEChunk, Tokens: 2, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"index":0,"text":"\n"},{"index":1,"text":"\u00e9"},{"index":2,"text":""}]}`}}},
		{"usage with a chunk and alone",
			"data: {\"choices\":[{\"text\":\" x\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":9,\"prompt_tokens\":12}}\n\n",
			[]parsedEvent{
				{Kind: SSEChunk, Tokens: 1, HasUsage: true, PromptTokens: 3, CompletionTokens: 1, Data: `{"choices":[{"text":" x"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`},
				{Kind: SSEChunk, HasUsage: true, PromptTokens: 12, CompletionTokens: 9, Data: `{"choices":[],"usage":{"completion_tokens":9,"prompt_tokens":12}}`}}},
		{"an error object in the stream, and vLLM's older bare one",
			"data: {\"error\":{\"object\":\"error\",\"message\":\"out of \\\"memory\\\"\",\"type\":\"InternalServerError\",\"code\":500}}\n\ndata: {\"object\":\"error\",\"message\":\"bad\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}\n\n",
			[]parsedEvent{
				{Kind: SSEError, PromptTokens: -1, CompletionTokens: -1, ErrorMessage: `out of \"memory\"`, ErrorCode: 500, Data: `{"error":{"object":"error","message":"out of \"memory\"","type":"InternalServerError","code":500}}`},
				{Kind: SSEError, PromptTokens: -1, CompletionTokens: -1, ErrorMessage: "bad", ErrorCode: 400, Data: `{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}`}}},
		{"malformed data",
			"data: {\"choices\":[{\"index\":0,\n\ndata: hello\n\ndata: {\"id\":\"x\"}\n\ndata: [1,2]\n\ndata: {\"choices\":[]} trailing\n\ndata: {\"choices\":[{\"text\":\"a\\q\"}]}\n\ndata:\n\n",
			[]parsedEvent{
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"index":0,`},
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: `hello`},
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: `{"id":"x"}`},
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: `[1,2]`},
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[]} trailing`},
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: `{"choices":[{"text":"a\q"}]}`},
				{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1, Data: ``}}},
		{"blank lines without data dispatch nothing; [DONE] ends",
			"\n\n: ping\n\nevent: x\n\ndata: [DONE]\n\n",
			[]parsedEvent{{Kind: SSEDone, PromptTokens: -1, CompletionTokens: -1, Data: "[DONE]"}}},
		{"an event without its blank line is not dispatched",
			"data: {\"choices\":[{\"text\":\"a\"}]}\n",
			nil},
	}
	for _, c := range cases {
		for k := 0; k <= len(c.stream); k++ {
			var p SSEParser
			got, err := feedPieces(&p, []byte(c.stream[:k]), []byte(c.stream[k:]))
			if err != nil {
				t.Fatalf("%s, split at %d: %v", c.name, k, err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", c.want) {
				t.Fatalf("%s, split at %d:\n got %+v\nwant %+v", c.name, k, got, c.want)
			}
		}
	}
}

func TestSSEParserBoundsALineThatNeverEnds(t *testing.T) {
	p := SSEParser{MaxEvent: 1024}
	piece := bytes.Repeat([]byte("x"), 100)
	var err error
	fed := 0
	for i := 0; i < 1000 && err == nil; i++ {
		_, _, err = p.Feed(piece)
		fed += len(piece)
	}
	if !errors.Is(err, ErrSSETooLong) {
		t.Fatalf("after %d bytes without a line end: %v, want ErrSSETooLong", fed, err)
	}
	if fed > 1024+len(piece) || cap(p.line) > 4096 {
		t.Fatalf("the parser took %d bytes (buffer capacity %d) before refusing, bound 1024", fed, cap(p.line))
	}
	if _, _, err := p.Feed([]byte("\n\ndata: [DONE]\n\n")); !errors.Is(err, ErrSSETooLong) {
		t.Errorf("a failed parser went on: %v", err)
	}
	p.Reset()
	if evs, err := feedPieces(&p, []byte("data: [DONE]\n\n")); err != nil || len(evs) != 1 || evs[0].Kind != SSEDone {
		t.Errorf("after Reset: %v, %+v", err, evs)
	}
}

func TestSSEParserBoundsAnEventOfManyDataLines(t *testing.T) {
	p := SSEParser{MaxEvent: 1024}
	line := []byte("data: " + strings.Repeat("y", 90) + "\n")
	var err error
	fed := 0
	for i := 0; i < 1000 && err == nil; i++ {
		_, _, err = p.Feed(line)
		fed += len(line)
	}
	// The bound counts the data (91 bytes a line here), not the field names.
	if !errors.Is(err, ErrSSETooLong) || len(p.data) > 1024 || fed > 1024/91*len(line)+len(line) {
		t.Fatalf("after %d bytes of one event's data lines (%d buffered): %v, want ErrSSETooLong by 1024 bytes of data", fed, len(p.data), err)
	}
}

func TestSSEParserTakesLinesOfTheBoundsLength(t *testing.T) {
	data := `{"choices":[{"text":"` + strings.Repeat("z", 900) + `"}]}`
	stream := []byte("data: " + data + "\n\n")
	p := SSEParser{MaxEvent: len(data) + len("data: ") + 1}
	for k := 0; k <= len(stream); k += 7 {
		p.Reset()
		evs, err := feedPieces(&p, stream[:k], stream[k:])
		if err != nil || len(evs) != 1 || evs[0].Tokens != 1 {
			t.Fatalf("split at %d: %v, %d events", k, err, len(evs))
		}
	}
}

// oracleEvent classifies an event's data with encoding/json, as the
// parser should, counting the choices with non-empty text or content.
func oracleEvent(data []byte) (kind SSEKind, tokens int) {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		return SSEDone, 0
	}
	var doc map[string]any
	if json.Unmarshal(data, &doc) != nil || doc == nil {
		return SSEMalformed, 0
	}
	choices, isArray := doc["choices"].([]any)
	_, usage := doc["usage"].(map[string]any)
	_, errObj := doc["error"].(map[string]any)
	if _, errString := doc["error"].(string); errString {
		errObj = true
	}
	switch {
	case errObj || (doc["object"] == "error" && !isArray):
		return SSEError, 0
	case !isArray && !usage:
		return SSEMalformed, 0
	}
	for _, c := range choices {
		m, _ := c.(map[string]any)
		text, _ := m["text"].(string)
		delta, _ := m["delta"].(map[string]any)
		content, _ := delta["content"].(string)
		reasoningContent, _ := delta["reasoning_content"].(string)
		reasoning, _ := delta["reasoning"].(string)
		toolCalls, _ := delta["tool_calls"].([]any)
		if text != "" || content != "" || reasoningContent != "" || reasoning != "" || len(toolCalls) > 0 {
			tokens++
		}
	}
	return SSEChunk, tokens
}

func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"text\":\" a\"}]}\n\ndata: [DONE]\n\n"), uint16(5))
	f.Add([]byte("data:{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\r\r"), uint16(40))
	f.Add([]byte(": c\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n\n"), uint16(1))
	f.Add([]byte("data: {\"error\":{\"message\":\"m\",\"code\":1}}\n\ndata: {\"choices\":[{\"index\":0,\n\n"), uint16(30))
	f.Add([]byte("data: {\"choices\":\ndata: [{\"text\":\"\\u0041\"},{\"text\":\"b\"}]}\n\n"), uint16(17))
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\"}],\"choices\":null,\"usage\":{}}\n\n"), uint16(9))
	f.Add([]byte("\xef\xbb\xbfdata: {\"choices\":[{\"delta\":{\"reasoning_content\":\"r\",\"tool_calls\":[]}}]}\n\nevent: error\ndata: {\"error\":\"x\"}\n\n"), uint16(2))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}],\"reasoning\":\"\"}}]}\n\n"), uint16(20))
	f.Fuzz(func(t *testing.T, stream []byte, split uint16) {
		k := int(split) % (len(stream) + 1)
		var whole, parts SSEParser
		whole.MaxEvent, parts.MaxEvent = 4096, 4096
		a, errA := feedPieces(&whole, stream)
		b, errB := feedPieces(&parts, stream[:k], stream[k:])
		if (errA == nil) != (errB == nil) || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("split at %d changed the result: %v %v vs %v %v", k, a, errA, b, errB)
		}
		for _, e := range a {
			if e.Tokens < 0 || (e.Kind != SSEChunk && e.Tokens != 0) {
				t.Fatalf("event %+v", e)
			}
			if bytes.IndexByte([]byte(e.Data), '\\') >= 0 {
				// Keys with escapes are matched literally (servers never
				// escape them): only the bound holds.
				if n := strings.Count(e.Data, "{"); e.Tokens > n {
					t.Fatalf("%d tokens from %q", e.Tokens, e.Data)
				}
				continue
			}
			kind, tokens := oracleEvent([]byte(e.Data))
			if e.Kind == SSEError && kind != SSEError && bytes.Contains(stream, []byte("event")) {
				continue // named "error" by an event field, which the oracle does not see
			}
			if kind == SSEMalformed && e.Kind != SSEMalformed {
				t.Fatalf("%q is %v, encoding/json finds it malformed", e.Data, e.Kind)
			}
			if e.Kind == SSEMalformed {
				continue // the parser also refuses JSON nested deeper than it reads
			}
			if kind != e.Kind || tokens != e.Tokens {
				t.Fatalf("%q: %v with %d tokens, encoding/json: %v with %d", e.Data, e.Kind, e.Tokens, kind, tokens)
			}
		}
	})
}

// benchStream is a chat answer of n tokens with usage, as vLLM frames it.
func benchStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"tiny","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"tiny","choices":[{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null,"stop_reason":null}]}`+"\n\n", i)
	}
	fmt.Fprintf(&b, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"tiny","choices":[],"usage":{"prompt_tokens":12,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 12+n, n)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// parseStream feeds stream in reads of size read and returns the tokens.
func parseStream(p *SSEParser, stream []byte, read int) int {
	p.Reset()
	tokens := 0
	for len(stream) > 0 {
		piece := stream[:min(read, len(stream))]
		stream = stream[len(piece):]
		for len(piece) > 0 {
			n, ev, err := p.Feed(piece)
			if err != nil {
				panic(err)
			}
			piece = piece[n:]
			if ev != nil {
				tokens += ev.Tokens
			}
		}
	}
	return tokens
}

func TestSSEParserAllocatesNothingPerEvent(t *testing.T) {
	stream := benchStream(64)
	var p SSEParser
	for _, read := range []int{len(stream), 4096, 100, 7} {
		parseStream(&p, stream, read) // grow the buffers
		allocs := testing.AllocsPerRun(50, func() {
			if got := parseStream(&p, stream, read); got != 64 {
				t.Fatalf("%d tokens, want 64", got)
			}
		})
		if allocs != 0 {
			t.Errorf("reads of %d bytes: %v allocations per stream of 66 events, want 0", read, allocs)
		}
	}
}

// BenchmarkSSEParse reports the parser's cost per streamed token (one
// chat chunk of vLLM's shape), whole reads and reads split mid-event.
func BenchmarkSSEParse(b *testing.B) {
	const tokens = 256
	stream := benchStream(tokens)
	for _, read := range []int{len(stream), 4096, 256} {
		b.Run(fmt.Sprintf("read=%d", read), func(b *testing.B) {
			var p SSEParser
			parseStream(&p, stream, read)
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if parseStream(&p, stream, read) != tokens {
					b.Fatal("wrong token count")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
		})
	}
	// For scale: the same events decoded with encoding/json, as a
	// straightforward client would.
	b.Run("encoding-json", func(b *testing.B) {
		type chunk struct {
			Choices []struct {
				Text  *string `json:"text"`
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int64 `json:"prompt_tokens"`
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			n := 0
			for _, ev := range bytes.Split(stream, []byte("\n\n")) {
				data, ok := bytes.CutPrefix(ev, []byte("data: "))
				if !ok || string(data) == "[DONE]" {
					continue
				}
				var c chunk
				if err := json.Unmarshal(data, &c); err != nil {
					b.Fatal(err)
				}
				for _, ch := range c.Choices {
					if ch.Delta.Content != nil && *ch.Delta.Content != "" {
						n++
					}
				}
			}
			if n != tokens {
				b.Fatalf("%d tokens", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
	})
}

// TestSSEParserStripsALeadingByteOrderMark checks, at every split point,
// that a stream's leading UTF-8 BOM is dropped (its first event kept) and
// that a BOM anywhere else is data.
func TestSSEParserStripsALeadingByteOrderMark(t *testing.T) {
	stream := []byte("\xef\xbb\xbfdata: {\"choices\":[{\"text\":\"a\"}]}\n\n\xef\xbb\xbfdata: [DONE]\n\n")
	for k := 0; k <= len(stream); k++ {
		var p SSEParser
		evs, err := feedPieces(&p, stream[:k], stream[k:])
		// The second BOM starts a field name that is not "data": that
		// event has no data and is not dispatched.
		if err != nil || len(evs) != 1 || evs[0].Kind != SSEChunk || evs[0].Tokens != 1 {
			t.Fatalf("split at %d: %v %+v, want the first chunk alone", k, err, evs)
		}
	}
}

// TestSSEParserReadsErrorsAndNonTextOutput checks the event kinds and
// output of error events and of chunks whose output is reasoning or tool
// calls.
func TestSSEParserReadsErrorsAndNonTextOutput(t *testing.T) {
	for _, c := range []struct {
		stream string
		kind   SSEKind
		tokens int
		msg    string
	}{
		{"event: error\ndata: {\"message\":\"m1\",\"code\":5}\n\n", SSEError, 0, "m1"},
		{"event: error\ndata: not json\n\n", SSEError, 0, "not json"},
		{"event: error\ndata: {\"choices\":[{\"text\":\"a\"}]}\n\n", SSEError, 0, `{"choices":[{"text":"a"}]}`},
		{"event: error\n\ndata: {\"choices\":[{\"text\":\"a\"}]}\n\n", SSEChunk, 1, ""}, // the name went with an event without data
		{"data: {\"error\":\"m2\"}\n\n", SSEError, 0, "m2"},
		{"data: {\"error\":null,\"choices\":[{\"text\":\"a\"}]}\n\n", SSEChunk, 1, ""},
		{"data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"r\"}},{\"delta\":{\"reasoning\":\"s\"}}]}\n\n", SSEChunk, 2, ""},
		{"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n", SSEChunk, 1, ""},
		{"data: {\"choices\":[{\"delta\":{\"tool_calls\":[],\"reasoning_content\":\"\",\"content\":null}}]}\n\n", SSEChunk, 0, ""},
	} {
		var p SSEParser
		evs, err := feedPieces(&p, []byte(c.stream))
		if err != nil || len(evs) != 1 {
			t.Errorf("%q: %v, %d events", c.stream, err, len(evs))
			continue
		}
		if e := evs[0]; e.Kind != c.kind || e.Tokens != c.tokens || e.ErrorMessage != c.msg {
			t.Errorf("%q: %v, %d tokens, message %q; want %v, %d, %q", c.stream, e.Kind, e.Tokens, e.ErrorMessage, c.kind, c.tokens, c.msg)
		}
	}
}
