package load

// Streamed LLM answers on the REST engines. An OpenAI-compatible target's
// connections each carry an llmStream: the response framer hands it a 2xx
// body's bytes (chunked framing removed) as each read returns them, the
// engine tells it when those bytes arrived, and it feeds them to an
// SSEParser and the events to an LLMStreamTimer. No goroutine per token
// and, once the buffers have grown, no allocation per event. When the
// request ends the engine's Outcome goes through end, which records the
// request's timings in the target's LLMRecorder and turns a stream that
// went wrong after its 2xx head into a StreamFailure.

import (
	"errors"
	"fmt"
	"time"
)

// LLMTarget makes a REST target an OpenAI-compatible one whose answers
// are timed token by token.
type LLMTarget struct {
	// Recorder gets every request's LLMRequest, by phase and window.
	Recorder *LLMRecorder
	// Streamed says, per payload (indexed like RESTConfig.Bodies), that
	// the body asks for "stream": true. A payload without it is answered
	// with one JSON document, timed as one event: its TTFT is its
	// end-to-end latency.
	Streamed []bool
}

// IsLLM reports whether the target's answers are timed as LLM streams.
func (r *REST) IsLLM() bool { return r.llm != nil }

// setLLM checks and keeps cfg.LLM.
func (r *REST) setLLM(t *LLMTarget) error {
	if t == nil {
		return nil
	}
	if t.Recorder == nil {
		return errors.New("rest: an LLM target without a recorder")
	}
	if len(t.Streamed) != len(r.cfg.Bodies) {
		return fmt.Errorf("rest: %d payloads but stream flags for %d", len(r.cfg.Bodies), len(t.Streamed))
	}
	r.llm = t
	return nil
}

// newLLMStream returns a connection's stream state, nil when the target
// is not an LLM one (every llmStream method is a no-op on nil).
func (r *REST) newLLMStream() *llmStream {
	if r.llm == nil {
		return nil
	}
	return &llmStream{rec: r.llm.Recorder}
}

// llmStreamed reports whether payload asks for a streamed answer.
func (r *REST) llmStreamed(payload int) bool { return r.llm != nil && r.llm.Streamed[payload] }

// llmStream is one connection's state for the request on it.
type llmStream struct {
	rec    *LLMRecorder
	parser SSEParser
	timer  LLMStreamTimer

	active   bool // a request is being timed
	streamed bool // its answer is an event stream, not one document
	phase    Phase
	inWindow bool

	at         time.Duration // when the bytes being fed arrived (run clock)
	answered   bool          // a 2xx body began: the head came
	status     int           // the answer's status, once answered
	progressed bool          // output (or a whole answer's bytes) arrived since takeProgress
	tooLong    bool          // an event (or a whole answer) went past the parser's bound
	whole      []byte        // a non-streamed answer, to read once complete
	// sniffed: the first byte of a streamed answer's body that is not
	// a space was seen; notStreamed: it opened a JSON document, not an
	// event stream (the server ignored "stream": true).
	sniffed, notStreamed bool
	// done: data: [DONE] arrived, at doneAt. The answer is complete
	// whatever its framing still owes (see drainBound).
	done   bool
	doneAt time.Duration
}

// llmDrainAfterDone bounds the wait, after data: [DONE], for the end of
// the body's framing (the last chunk of a chunked body) that a
// kept-alive connection needs to carry the next request. A server that
// never sends it has still answered: the request succeeds at [DONE] and
// the connection is closed instead of reused.
const llmDrainAfterDone = 250 * time.Millisecond

// drainBound is how long an engine waits for the body's end after
// [DONE], the timeout when shorter.
func drainBound(timeout time.Duration) time.Duration { return min(timeout, llmDrainAfterDone) }

// begin starts timing a request due (open loop) or sent (closed loop) at
// start.
func (s *llmStream) begin(phase Phase, inWindow bool, start time.Duration, streamed bool) {
	if s == nil {
		return
	}
	s.parser.Reset()
	s.timer.Begin(start)
	s.active, s.streamed, s.phase, s.inWindow = true, streamed, phase, inWindow
	s.answered, s.progressed, s.tooLong, s.status = false, false, false, 0
	s.sniffed, s.notStreamed, s.done, s.doneAt = false, false, false, 0
	s.whole = s.whole[:0]
}

// arrived says when the bytes the framer is about to be given arrived.
func (s *llmStream) arrived(at time.Duration) {
	if s != nil {
		s.at = at
	}
}

// takeProgress reports whether the answer progressed since it was last
// asked: the stall bound (the timeout) starts again. A stream progresses
// with each event that carries output and with its end ([DONE], an
// error), not with other bytes: a server that sends only comments
// (keep-alives) or empty chunks for the timeout has stalled, however
// alive its connection. A whole (not streamed) answer progresses with
// its bytes.
func (s *llmStream) takeProgress() bool {
	if s == nil || !s.progressed {
		return false
	}
	s.progressed = false
	return true
}

// finished reports whether the stream reached data: [DONE]: the engine
// then waits at most drainBound for the body's end.
func (s *llmStream) finished() bool { return s != nil && s.active && s.done }

// body takes bytes of the answer's body (the framer's hook). Those of a
// status other than 2xx are the framer's error sample, not events.
func (s *llmStream) body(status int, b []byte) {
	if !s.active || status < 200 || status > 299 {
		return
	}
	s.answered, s.status = true, status
	if s.tooLong || s.done {
		return // after [DONE]: the body's end, or nothing the answer needs
	}
	if s.streamed && !s.sniffed {
		s.sniff(b)
	}
	if !s.streamed || s.notStreamed {
		s.progressed = true
		if len(s.whole)+len(b) > s.parser.maxEvent() {
			s.tooLong = true
			return
		}
		s.whole = append(s.whole, b...)
		return
	}
	for len(b) > 0 {
		n, ev, err := s.parser.Feed(b)
		if err != nil {
			s.tooLong = true
			return
		}
		b = b[n:]
		if ev == nil {
			continue
		}
		s.timer.Event(ev, s.at)
		switch {
		case ev.Kind == SSEDone:
			s.done, s.doneAt, s.progressed = true, s.at, true
			return
		case ev.Kind == SSEError || ev.Tokens > 0:
			s.progressed = true
		}
	}
}

// sniff looks at the first bytes of a streamed answer's body: a JSON
// document there is an answer that was not streamed. An event stream
// starts with a field name, a comment or a byte-order mark, never '{'.
func (s *llmStream) sniff(b []byte) {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		s.sniffed, s.notStreamed = true, c == '{'
		return
	}
}

// wholeAnswer times a non-streamed answer as one event at done, followed
// by the end a stream would have sent: its output (usage when it has one)
// all arrives at once.
func (s *llmStream) wholeAnswer(done time.Duration) {
	ev := SSEEvent{PromptTokens: -1, CompletionTokens: -1}
	var sc chunkScanner
	sc.scan(s.whole, &ev)
	if ev.Kind == SSEChunk {
		// A chat answer's text is in message, not delta: the answer
		// carries output all the same.
		ev.Tokens = max(ev.Tokens, 1)
	}
	s.timer.Event(&ev, done)
	if ev.Kind != SSEError {
		s.timer.Event(&SSEEvent{Kind: SSEDone}, done)
	}
}

// jsonForStream reads the JSON document that answered a streamed
// request: an error object is the server's error (the timer sees it as
// an error event: LLMStreamError), a completion is LLMNotStreamed (its
// usage is still counted), anything else is LLMMalformed.
func (s *llmStream) jsonForStream(done time.Duration) LLMFailure {
	ev := SSEEvent{PromptTokens: -1, CompletionTokens: -1}
	var sc chunkScanner
	sc.scan(s.whole, &ev)
	switch ev.Kind {
	case SSEError:
		s.timer.Event(&ev, done)
		return LLMOK // Finish makes it LLMStreamError
	case SSEChunk:
		ev.Tokens = 0 // nothing was streamed: no token to time
		s.timer.Event(&ev, done)
		return LLMNotStreamed
	}
	s.timer.Event(&ev, done)
	return LLMMalformed
}

// end finishes the request, which ended at done (run clock) with out,
// records it, and returns the outcome the run counts: out, or, for a
// stream that failed after its 2xx head (or stalled), a StreamFailure.
func (s *llmStream) end(out Outcome, done time.Duration) Outcome {
	if s == nil || !s.active {
		return out
	}
	s.active = false
	failure := LLMOK
	if s.done && out.Class != OK {
		// The answer was complete at [DONE]; what failed is the wait for
		// the framing's end (the engine closed the connection).
		out = Outcome{Class: OK, Code: s.status, BytesSent: out.BytesSent, BytesReceived: out.BytesReceived}
		done = s.doneAt
	}
	switch out.Class {
	case OK:
		switch {
		case s.tooLong:
			failure = LLMMalformed
		case s.notStreamed:
			failure = s.jsonForStream(done)
		case !s.streamed:
			s.wholeAnswer(done)
		}
	case Timeout:
		failure = LLMStalled
	case ConnClosed, ConnReset:
		failure = LLMClosedMidStream
	default:
		// An error status, or an answer that never came (a refused
		// connection, bytes that are not HTTP): the stream never began.
		failure = LLMHTTPError
	}
	r := s.timer.Finish(done, failure)
	s.rec.Record(s.phase, s.inWindow, r)
	if out.Class == OK && r.Failure != LLMOK || out.Class == Timeout ||
		(out.Class == ConnClosed || out.Class == ConnReset) && s.answered {
		out = Outcome{Class: StreamFailure, Code: int(r.Failure), Err: streamError(r, s.tooLong, out.Err),
			BytesSent: out.BytesSent, BytesReceived: out.BytesReceived}
	}
	s.whole = s.whole[:0]
	return out
}

// streamError says what went wrong with a stream, for the error samples.
func streamError(r *LLMRequest, tooLong bool, err error) error {
	switch {
	case r.Failure == LLMStalled:
		return fmt.Errorf("no output chunk for the timeout after %d output chunks: %w", r.Chunks, err)
	case r.Failure == LLMClosedMidStream && err != nil:
		return fmt.Errorf("the connection ended after %d output chunks, before data: [DONE]: %w", r.Chunks, err)
	case r.Failure == LLMClosedMidStream:
		return fmt.Errorf("the answer ended after %d output chunks without data: [DONE]", r.Chunks)
	case r.Failure == LLMStreamError:
		return fmt.Errorf("error in the stream: %s", printable(r.ErrorMessage))
	case r.Failure == LLMNotStreamed:
		return errors.New(`a streamed request ("stream": true) was answered with one JSON document, not an event stream`)
	case tooLong:
		return fmt.Errorf("%w (%d bytes)", ErrSSETooLong, DefaultSSEMaxEvent)
	}
	return fmt.Errorf("%d events that are not completion chunks", r.Malformed)
}

// requestBeginner is a Sender told each request's phase, window and start
// before Send, and the run's clock: a REST sender on an LLM target times
// the answer's events on it.
type requestBeginner interface {
	beginRequest(phase Phase, inWindow bool, start time.Duration, clock func() time.Duration)
}

func (s *restSender) beginRequest(phase Phase, inWindow bool, start time.Duration, clock func() time.Duration) {
	if s.stream != nil {
		s.next = pendingRequest{phase: phase, inWindow: inWindow, start: start}
		s.clock = clock
	}
}

// pendingRequest is what beginRequest said of the request Send sends.
type pendingRequest struct {
	phase    Phase
	inWindow bool
	start    time.Duration
}

// beginStream starts timing the request of payload.
func (s *restSender) beginStream(payload int) {
	if s.stream != nil && s.clock != nil {
		s.stream.begin(s.next.phase, s.next.inWindow, s.next.start, s.rest.llmStreamed(payload))
	}
}

// streamRead notes that bytes are about to go to the framer: now is
// their arrival.
func (s *restSender) streamRead() {
	if s.stream != nil && s.stream.active {
		s.stream.arrived(s.clock())
	}
}

// streamAlive gives a stream that got output the whole timeout again: a
// stream fails when it stalls, not when it is long. After [DONE] the
// wait for the body's end is drainBound.
func (s *restSender) streamAlive() {
	if s.stream.takeProgress() {
		wait := s.rest.cfg.Timeout
		if s.stream.finished() {
			wait = drainBound(wait)
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(wait))
	}
}

// endStream finishes the request's timing; out is its outcome.
func (s *restSender) endStream(out Outcome) Outcome {
	if s.stream == nil || !s.stream.active {
		return out
	}
	return s.stream.end(out, s.clock())
}
