package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptServer is an OpenAI-compatible server on loopback whose answers
// a test writes byte by byte (framing included), to play the faults the
// simulator does not: keep-alive comments, answers that are not streams,
// error events, a [DONE] whose body never ends.
type scriptServer struct {
	ln      net.Listener
	answer  func(w *scriptWriter)
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	answers atomic.Int64
}

// scriptWriter writes one answer on a connection.
type scriptWriter struct {
	c      net.Conn
	stop   chan struct{}
	err    error
	closed bool // the script ends the connection after its answer
}

// startScript serves answer to each request until the test ends.
func startScript(t *testing.T, answer func(w *scriptWriter)) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{ln: ln, answer: answer, stop: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *scriptServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

func (s *scriptServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *scriptServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		w := &scriptWriter{c: c, stop: s.stop}
		s.answer(w)
		s.answers.Add(1)
		if w.closed || w.err != nil {
			return
		}
	}
}

// close stops the server and ends its connections (their scripts' waits
// end at once).
func (s *scriptServer) close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

func (w *scriptWriter) raw(s string) {
	if w.err == nil {
		_, w.err = io.WriteString(w.c, s)
	}
}

// streamHead starts a chunked answer of content type ct.
func (w *scriptWriter) streamHead(ct string) {
	w.raw("HTTP/1.1 200 OK\r\nContent-Type: " + ct + "\r\nTransfer-Encoding: chunked\r\n\r\n")
}

// chunk writes s as one chunk of the body.
func (w *scriptWriter) chunk(s string) { w.raw(fmt.Sprintf("%x\r\n%s\r\n", len(s), s)) }

// end writes the chunked body's last chunk.
func (w *scriptWriter) end() { w.raw("0\r\n\r\n") }

// whole writes a complete answer with a Content-Length.
func (w *scriptWriter) whole(ct, body string) {
	w.raw(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", ct, len(body), body))
}

// sleep waits d, or less when the server stops.
func (w *scriptWriter) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.stop:
		w.err = io.EOF
	}
}

// hold keeps the connection open without a byte until the server stops.
func (w *scriptWriter) hold() {
	<-w.stop
	w.err = io.EOF
}

// contentChunk is a chat chunk of one output token.
func contentChunk(s string) string {
	return `data: {"choices":[{"index":0,"delta":{"content":"` + s + `"}}]}` + "\n\n"
}

// usageChunk is the usage chunk of include_usage.
func usageChunk(prompt, completion int) string {
	return fmt.Sprintf(`data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}`+"\n\n", prompt, completion)
}

const doneData = "data: [DONE]\n\n"

// scriptRun sends plan's chat requests (streamed) to s on engine.
func scriptRun(t *testing.T, s *scriptServer, engine Engine, plan Plan, timeout time.Duration) (*LLMStats, Snapshot) {
	t.Helper()
	if engine == EngineEpoll && !eventLoopsAvailable {
		t.Skip("no epoll engine here")
	}
	llm := NewLLMRecorder()
	tr, err := NewREST(RESTConfig{URL: s.url("/v1/chat/completions"), Bodies: [][]byte{[]byte(chatBody)}, Timeout: timeout, Engine: engine,
		LLM: &LLMTarget{Recorder: llm, Streamed: []bool{true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rec := NewRecorder()
	if _, err := Run(context.Background(), plan, tr, PickerFunc(func() int { return 0 }), rec); err != nil {
		t.Fatal(err)
	}
	return llm.Snapshot().Steady, rec.Snapshot(true)
}

// bothEngines runs f on each REST engine.
func bothEngines(t *testing.T, f func(t *testing.T, engine Engine)) {
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		t.Run(string(engine), func(t *testing.T) { f(t, engine) })
	}
}

// streamErrorCount is the run's errors of one stream failure class.
func streamErrorCount(lat Snapshot, f LLMFailure) int64 {
	return lat.Steady.Errors[ErrorKey{Class: StreamFailure, Code: int(f)}]
}

// firstStreamError is the error sample of a stream failure class.
func firstStreamError(lat Snapshot, f LLMFailure) string {
	return lat.FirstErrors[ErrorKey{Class: StreamFailure, Code: int(f)}]
}

// TestLLMKeepAlivesDoNotHoldOffTheStall checks that --timeout bounds the
// wait for a token, not for a byte: a server that sends only SSE comments
// (keep-alives) for longer than the timeout, before the first token or
// between two, has stalled the request, and the run does not wait for
// the comments to end.
func TestLLMKeepAlivesDoNotHoldOffTheStall(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const pings = 40 // 40 x 50ms: 2s of comments, far past the timeout
	for _, tokensBefore := range []int{0, 2} {
		t.Run(fmt.Sprintf("tokens-before-%d", tokensBefore), func(t *testing.T) {
			bothEngines(t, func(t *testing.T, engine Engine) {
				var pinged atomic.Int64
				s := startScript(t, func(w *scriptWriter) {
					w.streamHead("text/event-stream")
					for i := 0; i < tokensBefore; i++ {
						w.chunk(contentChunk("a"))
					}
					for i := 0; i < pings && w.err == nil; i++ {
						w.chunk(": ping\n\n")
						pinged.Add(1)
						w.sleep(50 * time.Millisecond)
					}
					w.chunk(contentChunk("b") + usageChunk(3, tokensBefore+1) + doneData)
					w.end()
				})
				st, lat := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 1}, timeout)
				if st.Failures[LLMStalled] != 1 || streamErrorCount(lat, LLMStalled) != 1 || st.Timed != 0 {
					t.Fatalf("failures %v, errors %v, timed %d: want one stalled request", st.Failures, lat.Steady.Errors, st.Timed)
				}
				// The request ended while the server was still pinging
				// (the run did not wait for the comments to end).
				if n := pinged.Load(); n >= pings {
					t.Errorf("the server sent all %d comments before the request ended", n)
				}
				if msg := firstStreamError(lat, LLMStalled); !strings.Contains(msg, fmt.Sprintf("after %d output chunks", tokensBefore)) {
					t.Errorf("error sample %q", msg)
				}
			})
		})
	}
}

// TestLLMJSONAnswerToAStreamedRequestIsCountedAsSuch checks the class of
// a 2xx JSON document answering "stream": true: not_streamed for a
// completion (its usage still counted), stream_error with the server's
// message for an error object; neither is timed.
func TestLLMJSONAnswerToAStreamedRequestIsCountedAsSuch(t *testing.T) {
	for _, c := range []struct {
		name   string
		body   string
		class  LLMFailure
		output int64
		sample string
	}{
		{"completion", `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5}}`,
			LLMNotStreamed, 5, "not an event stream"},
		{"error", `{"error":{"message":"the model is overloaded","type":"ServiceUnavailable","code":503}}`, LLMStreamError, 0, "the model is overloaded"},
		{"bare-error", `  {"object":"error","message":"bad prompt","code":400}`, LLMStreamError, 0, "bad prompt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bothEngines(t, func(t *testing.T, engine Engine) {
				s := startScript(t, func(w *scriptWriter) { w.whole("application/json", c.body) })
				st, lat := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 2}, 5*time.Second)
				if st.Failures[c.class] != 2 || streamErrorCount(lat, c.class) != 2 || st.Timed != 0 {
					t.Fatalf("failures %v, errors %v, timed %d: want 2 %s", st.Failures, lat.Steady.Errors, st.Timed, c.class)
				}
				if st.OutputTokens != 2*c.output {
					t.Errorf("output tokens %d, want %d", st.OutputTokens, 2*c.output)
				}
				if msg := firstStreamError(lat, c.class); !strings.Contains(msg, c.sample) {
					t.Errorf("error sample %q, want it to say %q", msg, c.sample)
				}
			})
		})
	}
}

// TestLLMErrorInTheStreamIsAStreamErrorAndNotTimed checks that an error
// event (event: error, or data with an "error" member) makes the request
// a stream_error whose timings stay out of TTFT and ITL, however the
// stream ends after it.
func TestLLMErrorInTheStreamIsAStreamErrorAndNotTimed(t *testing.T) {
	for _, c := range []struct {
		name, event string
		closeAfter  bool
	}{
		{"event-error", "event: error\ndata: {\"message\":\"engine died\"}\n\n", false},
		{"event-error-text", "event: error\ndata: engine died\n\n", false},
		{"error-string", "data: {\"error\":\"engine died\"}\n\n", false},
		{"event-error-then-close", "event: error\ndata: {\"message\":\"engine died\"}\n\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			bothEngines(t, func(t *testing.T, engine Engine) {
				s := startScript(t, func(w *scriptWriter) {
					w.streamHead("text/event-stream")
					w.chunk(contentChunk("a") + contentChunk("b"))
					w.chunk(c.event)
					if c.closeAfter {
						w.closed = true
						return
					}
					w.chunk(contentChunk("c") + doneData)
					w.end()
				})
				st, lat := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 2}, 5*time.Second)
				if st.Failures[LLMStreamError] != 2 || streamErrorCount(lat, LLMStreamError) != 2 {
					t.Fatalf("failures %v, errors %v: want 2 stream_error", st.Failures, lat.Steady.Errors)
				}
				if st.Timed != 0 || st.TTFT.TotalCount() != 0 || st.ITL.TotalCount() != 0 || st.MalformedEvents != 0 {
					t.Errorf("timed %d, ttft %d, itl %d, malformed %d: an errored stream's timings were kept",
						st.Timed, st.TTFT.TotalCount(), st.ITL.TotalCount(), st.MalformedEvents)
				}
				if msg := firstStreamError(lat, LLMStreamError); !strings.Contains(msg, "engine died") {
					t.Errorf("error sample %q", msg)
				}
			})
		})
	}
}

// TestLLMDoneEndsTheAnswerWhenTheBodyDoesNot checks that data: [DONE]
// completes the request though the chunked body never ends (or the
// connection closes before its last chunk): the request succeeds with
// its tokens, and the connection is not used again.
func TestLLMDoneEndsTheAnswerWhenTheBodyDoesNot(t *testing.T) {
	for _, closeAfter := range []bool{false, true} {
		t.Run(fmt.Sprintf("close-%v", closeAfter), func(t *testing.T) {
			bothEngines(t, func(t *testing.T, engine Engine) {
				var conns atomic.Int64
				s := startScript(t, func(w *scriptWriter) {
					conns.Add(1)
					w.streamHead("text/event-stream")
					w.chunk(contentChunk("a") + contentChunk("b") + contentChunk("c") + usageChunk(3, 3) + doneData)
					w.closed = true
					if !closeAfter {
						w.hold() // no last chunk, no close
					}
				})
				const requests = 3
				// A long timeout: the request must end on [DONE], not on it.
				st, lat := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: requests}, 20*time.Second)
				if st.Failures[LLMOK] != requests || lat.Steady.ErrorTotal() != 0 || st.Timed != requests || st.OutputTokens != 3*requests {
					t.Fatalf("failures %v, errors %v, timed %d, output %d: want %d successes of 3 tokens",
						st.Failures, lat.Steady.Errors, st.Timed, st.OutputTokens, requests)
				}
				if st.E2E.Max() >= int64(10*time.Second/time.Microsecond) {
					t.Errorf("e2e max %d us: the request waited for the body's end", st.E2E.Max())
				}
				if n := conns.Load(); n != requests {
					t.Errorf("%d answers on their own connections, want %d (a body that never ended left its connection reused)", n, requests)
				}
			})
		})
	}
}

// TestLLMReasoningAndToolCallsAreOutput checks that reasoning deltas
// (reasoning_content, reasoning) and tool calls are output chunks: the
// first token is the first reasoning delta, and each counts.
func TestLLMReasoningAndToolCallsAreOutput(t *testing.T) {
	const think = 200 * time.Millisecond
	bothEngines(t, func(t *testing.T, engine Engine) {
		s := startScript(t, func(w *scriptWriter) {
			w.streamHead("text/event-stream")
			w.chunk(`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n\n")
			w.chunk(`data: {"choices":[{"index":0,"delta":{"reasoning_content":"let"}}]}` + "\n\n")
			w.chunk(`data: {"choices":[{"index":0,"delta":{"reasoning":" me think","content":null}}]}` + "\n\n")
			w.sleep(think)
			w.chunk(contentChunk("The") + contentChunk(" answer"))
			w.chunk(`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}` + "\n\n")
			w.chunk(doneData)
			w.end()
		})
		st, lat := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 2}, 5*time.Second)
		if st.Failures[LLMOK] != 2 || lat.Steady.ErrorTotal() != 0 || st.Timed != 2 {
			t.Fatalf("failures %v, errors %v, timed %d", st.Failures, lat.Steady.Errors, st.Timed)
		}
		// 5 output chunks each: 4 gaps, one of them the think time; the
		// TTFT does not hold it.
		if st.ITL.TotalCount() != 8 || st.OutputTokens != 10 {
			t.Errorf("%d gaps, %d output tokens; want 8 and 10", st.ITL.TotalCount(), st.OutputTokens)
		}
		if st.ITL.Max() < int64(think/time.Microsecond) {
			t.Errorf("largest gap %d us, the server thought %v between the reasoning and the answer", st.ITL.Max(), think)
		}
	})
}

// TestLLMStreamWithoutOutputIsCountedApart checks that a stream that
// completes without one output chunk (a role-only delta, empty content,
// usage of 0 tokens) is counted in NoOutput, not as a silent success.
func TestLLMStreamWithoutOutputIsCountedApart(t *testing.T) {
	bothEngines(t, func(t *testing.T, engine Engine) {
		s := startScript(t, func(w *scriptWriter) {
			w.streamHead("text/event-stream")
			w.chunk(`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n\n")
			w.chunk(`data: {"choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}]}` + "\n\n" + usageChunk(3, 0) + doneData)
			w.end()
		})
		st, _ := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 3}, 5*time.Second)
		if st.Failures[LLMOK] != 3 || st.NoOutput != 3 || st.Timed != 0 {
			t.Fatalf("failures %v, no output %d, timed %d: want 3 successes without output", st.Failures, st.NoOutput, st.Timed)
		}
	})
}

// TestLLMUsageBelowTheChunksIsNotTrusted checks that a usage giving fewer
// completion tokens than the output chunks streamed is replaced by the
// chunk count, and counted.
func TestLLMUsageBelowTheChunksIsNotTrusted(t *testing.T) {
	bothEngines(t, func(t *testing.T, engine Engine) {
		s := startScript(t, func(w *scriptWriter) {
			w.streamHead("text/event-stream")
			var b strings.Builder
			for i := 0; i < 10; i++ {
				b.WriteString(contentChunk("w"))
			}
			w.chunk(b.String() + usageChunk(3, 3) + doneData)
			w.end()
		})
		st, _ := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 2}, 5*time.Second)
		if st.Failures[LLMOK] != 2 || st.OutputTokens != 20 || st.UsageBelowChunks != 2 || st.OutputFromUsage != 0 {
			t.Fatalf("failures %v, output %d, usage below chunks %d, from usage %d: want 20 tokens from the chunks, 2 counted",
				st.Failures, st.OutputTokens, st.UsageBelowChunks, st.OutputFromUsage)
		}
		// TPOT divides by the chunks' count: 9 gaps, not 2.
		if st.TPOT.TotalCount() != 2 || st.TPOT.Max() > st.E2E.Max()/9+1 {
			t.Errorf("TPOT max %d us with e2e max %d us", st.TPOT.Max(), st.E2E.Max())
		}
	})
}

// TestLLMStreamStartingWithAByteOrderMarkLosesNoEvent checks that a
// leading UTF-8 BOM is stripped, as the SSE standard says, on both
// engines.
func TestLLMStreamStartingWithAByteOrderMarkLosesNoEvent(t *testing.T) {
	bothEngines(t, func(t *testing.T, engine Engine) {
		s := startScript(t, func(w *scriptWriter) {
			w.streamHead("text/event-stream")
			w.chunk("\xef\xbb")
			w.chunk("\xbf" + contentChunk("a") + contentChunk("b") + contentChunk("c") + doneData)
			w.end()
		})
		st, lat := scriptRun(t, s, engine, Plan{Concurrency: 1, Requests: 2}, 5*time.Second)
		if st.Failures[LLMOK] != 2 || lat.Steady.ErrorTotal() != 0 || st.OutputTokens != 6 || st.MalformedEvents != 0 {
			t.Fatalf("failures %v, errors %v, output %d, malformed %d: want 2 answers of 3 tokens",
				st.Failures, lat.Steady.Errors, st.OutputTokens, st.MalformedEvents)
		}
	})
}
