package load

// The timing of streamed LLM answers: an LLMStreamTimer follows one request's
// events as they arrive and yields its TTFT, inter-token gaps, TPOT and
// end-to-end latency; LLMStats holds those of many requests in HDR
// histograms with the token and failure counts, and an LLMRecorder keeps
// them by phase for concurrent engines, as Recorder does for latencies.

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// LLMFailure is how a streamed request failed, or LLMOK.
type LLMFailure uint8

// The failure classes of streamed requests, counted apart.
const (
	LLMOK LLMFailure = iota
	// LLMStalled: no event for longer than the engine's stall bound.
	LLMStalled
	// LLMClosedMidStream: the connection ended (or the body did) before
	// [DONE].
	LLMClosedMidStream
	// LLMMalformed: the stream held data that is not a chunk
	// (SSEMalformed) or an event past the parser's bound. A stream that
	// still reached [DONE] keeps its timings and tokens.
	LLMMalformed
	// LLMHTTPError: the answer's status was not 2xx.
	LLMHTTPError
	// LLMStreamError: the server sent an error in the stream (an error
	// event, or data with an "error" member), or answered a streamed
	// request 2xx with a JSON error object. A stream that stalls or
	// closes after its error event is counted here: the error is why.
	LLMStreamError
	// LLMNotStreamed: a request that asked for a stream was answered 2xx
	// with one JSON document (a server that ignores "stream": true): no
	// token was timed.
	LLMNotStreamed
	numLLMFailures
)

func (f LLMFailure) String() string {
	switch f {
	case LLMOK:
		return "ok"
	case LLMStalled:
		return "stalled"
	case LLMClosedMidStream:
		return "closed_mid_stream"
	case LLMMalformed:
		return "malformed"
	case LLMHTTPError:
		return "http_error"
	case LLMStreamError:
		return "stream_error"
	case LLMNotStreamed:
		return "not_streamed"
	}
	return "unknown"
}

// TokenSource says where a request's output token count came from.
type TokenSource uint8

// Token counts come from the server's usage block when it sent one, or
// else from the chunks that carried output.
const (
	TokensFromChunks TokenSource = iota
	TokensFromUsage
)

func (s TokenSource) String() string {
	if s == TokensFromUsage {
		return "usage"
	}
	return "chunks"
}

// LLMRequest is one streamed request's timing. Times are offsets on the
// run's clock (Recorder.Now); durations count from Start, the intended
// send time in an open loop and the actual one in a closed loop.
type LLMRequest struct {
	Start time.Duration
	End   time.Duration // when the stream ended ([DONE], the failure, or the body's end)
	// TTFT is from Start to the first event that carried output; 0
	// with Chunks 0.
	TTFT time.Duration
	// Gaps are the times between successive output-carrying events,
	// Chunks-1 of them. The slice belongs to the LLMStreamTimer that made the
	// request and is reused by its next Begin.
	Gaps   []time.Duration
	E2E    time.Duration // End - Start
	Chunks int           // events that carried output
	// OutputTokens is usage's completion_tokens when the server sent it
	// (OutputFrom TokensFromUsage), else the output counted in the chunks.
	// A usage below that count contradicts the stream (each output chunk
	// carries at least a token): the chunks' count is kept and
	// UsageBelowChunks set.
	OutputTokens     int64
	OutputFrom       TokenSource
	UsageBelowChunks bool
	// InputTokens is usage's prompt_tokens, -1 when the server sent none.
	InputTokens int64
	// TPOT is (E2E - TTFT)/(OutputTokens - 1), 0 with fewer than two
	// output tokens.
	TPOT time.Duration
	// Done is set when the stream reached [DONE].
	Done bool
	// Malformed counts the events that were not chunks.
	Malformed int
	Failure   LLMFailure
	// ErrorMessage is the message of the stream's first error event
	// (copied: it outlives the parser's buffer).
	ErrorMessage string
}

// LLMStreamTimer follows one request's events. One belongs to a connection (or
// a goroutine) and is reused request after request: after the first few
// requests it allocates nothing.
type LLMStreamTimer struct {
	req       LLMRequest
	last      time.Duration
	tokens    int64
	usageOut  int64
	usageIn   int64
	errorSeen bool
}

// Begin starts a request sent (or due, in an open loop) at start.
func (s *LLMStreamTimer) Begin(start time.Duration) {
	gaps := s.req.Gaps[:0]
	*s = LLMStreamTimer{usageOut: -1, usageIn: -1}
	s.req = LLMRequest{Start: start, Gaps: gaps, InputTokens: -1}
}

// Event takes one parsed event that arrived at at (run clock). Events
// after [DONE] are ignored.
func (s *LLMStreamTimer) Event(ev *SSEEvent, at time.Duration) {
	if s.req.Done {
		return
	}
	switch ev.Kind {
	case SSEDone:
		s.req.Done = true
	case SSEMalformed:
		s.req.Malformed++
	case SSEError:
		if !s.errorSeen {
			s.errorSeen = true
			s.req.ErrorMessage = string(ev.ErrorMessage)
		}
	case SSEChunk:
		if ev.Tokens > 0 {
			if s.req.Chunks == 0 {
				s.req.TTFT = at - s.req.Start
			} else {
				s.req.Gaps = append(s.req.Gaps, at-s.last)
			}
			s.last = at
			s.req.Chunks++
			s.tokens += int64(ev.Tokens)
		}
		if ev.HasUsage {
			if ev.CompletionTokens >= 0 {
				s.usageOut = ev.CompletionTokens
			}
			if ev.PromptTokens >= 0 {
				s.usageIn = ev.PromptTokens
			}
		}
	}
}

// Finish ends the request at end (run clock). failure is what the engine
// saw (LLMOK when the body ended cleanly, a stall, a closed connection, an
// HTTP status, a body past the parser's bound as LLMMalformed); a clean
// end becomes LLMStreamError after an error event, LLMClosedMidStream
// without [DONE], and LLMMalformed with malformed events. The result's
// Gaps are valid until the next Begin.
func (s *LLMStreamTimer) Finish(end time.Duration, failure LLMFailure) *LLMRequest {
	r := &s.req
	r.End = end
	r.E2E = end - r.Start
	if failure == LLMOK {
		switch {
		case s.errorSeen:
			failure = LLMStreamError
		case !r.Done:
			failure = LLMClosedMidStream
		case r.Malformed > 0:
			failure = LLMMalformed
		}
	}
	if s.errorSeen && (failure == LLMStalled || failure == LLMClosedMidStream) {
		failure = LLMStreamError
	}
	r.Failure = failure
	r.OutputTokens, r.OutputFrom, r.UsageBelowChunks = s.tokens, TokensFromChunks, false
	switch {
	case s.usageOut >= s.tokens:
		r.OutputTokens, r.OutputFrom = s.usageOut, TokensFromUsage
	case s.usageOut >= 0:
		r.UsageBelowChunks = true
	}
	r.InputTokens = s.usageIn
	r.TPOT = 0
	if r.OutputTokens > 1 && r.Chunks > 0 {
		r.TPOT = (r.E2E - r.TTFT) / time.Duration(r.OutputTokens-1)
	}
	return r
}

// LLMStats are the timings and counts of many streamed requests. Its
// histograms are in us with the latency histograms' range (NewHistogram).
// It is not locked: an engine's loop may own one and Merge it into
// another, or record through an LLMRecorder.
type LLMStats struct {
	Requests int64 // finished, whatever their failure
	// Failures counts the requests by failure class (index LLMOK counts
	// the successful ones).
	Failures [numLLMFailures]int64
	// MalformedEvents counts the events that were not chunks, in every
	// request.
	MalformedEvents int64
	// NoOutput counts the successful requests (LLMOK) whose stream
	// reached [DONE] without one output chunk: no TTFT to time, and a
	// server answering nothing is worth a warning.
	NoOutput int64
	// UsageBelowChunks counts the requests whose usage gave fewer
	// completion tokens than the output chunks counted
	// (LLMRequest.UsageBelowChunks).
	UsageBelowChunks int64

	// The histograms hold the requests whose streams completed ([DONE]
	// reached, without a stream error): LLMOK and LLMMalformed. TTFT and
	// E2E need a request with output; ITL holds every gap; TPOT the
	// requests with two output tokens or more.
	TTFT, ITL, TPOT, E2E *hdrhistogram.Histogram
	Timed                int64 // requests in TTFT and E2E
	// OutputRate holds each timed request's output tokens over its
	// end-to-end latency (LLMPerf's request_output_throughput_token_per_s,
	// the "token-level inference speed" of NVIDIA's and Oracle's
	// benchmark guides), in thousandths of a token per second, so that
	// the histograms' unit conversion (/1000) gives tokens/s.
	OutputRate *hdrhistogram.Histogram

	// Token totals over every request, failed ones included (output
	// received is output, whatever came after it). OutputFromUsage
	// counts the requests whose count came from usage.
	OutputTokens, InputTokens int64
	OutputFromUsage           int64
	// TimedOutputTokens sums the output of the timed requests, for
	// throughput figures that match the histograms.
	TimedOutputTokens int64

	FirstAt time.Duration // earliest Start, -1 before any request
	LastAt  time.Duration // latest End

	// Good counts the requests that met the recorder's LLMGoal (none
	// without one).
	Good int64
}

// NewLLMStats returns empty stats.
func NewLLMStats() *LLMStats {
	return &LLMStats{TTFT: NewHistogram(), ITL: NewHistogram(), TPOT: NewHistogram(), E2E: NewHistogram(), OutputRate: NewHistogram(), FirstAt: -1}
}

// histUs is d in us within the histograms' range; floor is the smallest
// value kept (0 for gaps: two chunks read together are 0 apart).
func histUs(d time.Duration, floor int64) int64 {
	return min(max(int64(d/time.Microsecond), floor), HistogramMaxUs)
}

// Add records one finished request.
func (st *LLMStats) Add(r *LLMRequest) {
	st.Requests++
	st.Failures[r.Failure]++
	st.MalformedEvents += int64(r.Malformed)
	if r.Failure == LLMOK && r.Chunks == 0 {
		st.NoOutput++
	}
	if r.UsageBelowChunks {
		st.UsageBelowChunks++
	}
	st.OutputTokens += r.OutputTokens
	if r.InputTokens > 0 {
		st.InputTokens += r.InputTokens
	}
	if r.OutputFrom == TokensFromUsage {
		st.OutputFromUsage++
	}
	if st.FirstAt < 0 || r.Start < st.FirstAt {
		st.FirstAt = r.Start
	}
	if r.End > st.LastAt {
		st.LastAt = r.End
	}
	if (r.Failure != LLMOK && r.Failure != LLMMalformed) || r.Chunks == 0 {
		return
	}
	st.Timed++
	st.TimedOutputTokens += r.OutputTokens
	_ = st.TTFT.RecordValue(histUs(r.TTFT, HistogramMinUs))
	_ = st.E2E.RecordValue(histUs(r.E2E, HistogramMinUs))
	for _, g := range r.Gaps {
		_ = st.ITL.RecordValue(histUs(g, 0))
	}
	if r.OutputTokens > 1 {
		_ = st.TPOT.RecordValue(histUs(r.TPOT, 0))
	}
	if r.E2E > 0 {
		_ = st.OutputRate.RecordValue(outputRateValue(r.OutputTokens, r.E2E))
	}
}

// outputRateValue is a request's output tokens/s as OutputRate holds it.
func outputRateValue(tokens int64, e2e time.Duration) int64 {
	v := float64(tokens) / e2e.Seconds() * 1000
	return min(max(int64(v), HistogramMinUs), HistogramMaxUs)
}

// Merge adds o's requests to st.
func (st *LLMStats) Merge(o *LLMStats) {
	st.Requests += o.Requests
	for i := range st.Failures {
		st.Failures[i] += o.Failures[i]
	}
	st.MalformedEvents += o.MalformedEvents
	st.NoOutput += o.NoOutput
	st.UsageBelowChunks += o.UsageBelowChunks
	st.TTFT.Merge(o.TTFT)
	st.ITL.Merge(o.ITL)
	st.TPOT.Merge(o.TPOT)
	st.E2E.Merge(o.E2E)
	st.OutputRate.Merge(o.OutputRate)
	st.Timed += o.Timed
	st.OutputTokens += o.OutputTokens
	st.InputTokens += o.InputTokens
	st.OutputFromUsage += o.OutputFromUsage
	st.TimedOutputTokens += o.TimedOutputTokens
	if o.FirstAt >= 0 && (st.FirstAt < 0 || o.FirstAt < st.FirstAt) {
		st.FirstAt = o.FirstAt
	}
	st.LastAt = max(st.LastAt, o.LastAt)
	st.Good += o.Good
}

// reset empties st for reuse, keeping its histograms' memory.
func (st *LLMStats) reset() {
	ttft, itl, tpot, e2e, rate := st.TTFT, st.ITL, st.TPOT, st.E2E, st.OutputRate
	for _, h := range []*hdrhistogram.Histogram{ttft, itl, tpot, e2e, rate} {
		h.Reset()
	}
	*st = LLMStats{TTFT: ttft, ITL: itl, TPOT: tpot, E2E: e2e, OutputRate: rate, FirstAt: -1}
}

// Clone returns a deep copy of st.
func (st *LLMStats) Clone() *LLMStats {
	c := *st
	c.TTFT, c.ITL, c.TPOT, c.E2E, c.OutputRate = st.TTFT.Clone(), st.ITL.Clone(), st.TPOT.Clone(), st.E2E.Clone(), st.OutputRate.Clone()
	return &c
}

// Errors is the number of failed requests.
func (st *LLMStats) Errors() int64 { return st.Requests - st.Failures[LLMOK] }

// LLMGoal is the per-request objective goodput counts against: a
// request is good when its stream completed with output and each figure
// with a bound (0: none) is under it: TTFT, TPOT, end to end, its largest
// inter-token gap (ITLMax) and its mean gap (ITLMean). The judgement is
// vLLM bench serve's --goodput's (TTFT, TPOT, E2E) with the request's
// own gaps added.
type LLMGoal struct {
	TTFT, ITLMax, ITLMean, TPOT, E2E time.Duration
}

// Set reports whether the goal has any bound.
func (g LLMGoal) Set() bool { return g != LLMGoal{} }

// Met reports whether r met the goal. A request whose stream did not
// complete ([DONE] with output, LLMOK or LLMMalformed) never does.
func (g LLMGoal) Met(r *LLMRequest) bool {
	if (r.Failure != LLMOK && r.Failure != LLMMalformed) || r.Chunks == 0 {
		return false
	}
	under := func(v, bound time.Duration) bool { return bound == 0 || v < bound }
	if !under(r.TTFT, g.TTFT) || !under(r.TPOT, g.TPOT) || !under(r.E2E, g.E2E) {
		return false
	}
	if g.ITLMax > 0 || g.ITLMean > 0 {
		var sum, top time.Duration
		for _, gap := range r.Gaps {
			sum += gap
			top = max(top, gap)
		}
		if !under(top, g.ITLMax) {
			return false
		}
		if len(r.Gaps) > 0 && !under(sum/time.Duration(len(r.Gaps)), g.ITLMean) {
			return false
		}
	}
	return true
}

// LLMRecorder collects streamed requests from concurrent workers by phase,
// the way Recorder collects latencies: the steady requests also go to the
// window's or the outside's stats. Record takes a lock and allocates
// nothing.
//
// With KeepSeconds it also keeps each second's stats by phase (by the
// second a request ended in), which the run's per-second tick takes with
// CloseSeconds as it closes the latency series' seconds: the interval log
// writes them beside the latency's.
type LLMRecorder struct {
	mu                              sync.Mutex
	warmup, steady, window, outside *LLMStats
	frozen                          bool
	late                            int64
	goal                            LLMGoal

	keepSeconds bool
	// open is the earliest second not yet closed; seconds holds the open
	// seconds [open, open+llmOpenSeconds) at their index modulo
	// llmOpenSeconds, a phase's stats nil until one of its requests ends
	// in the second. Closed seconds' stats wait in spare for reuse.
	open    int
	seconds [llmOpenSeconds]llmSecond
	spare   []*LLMStats
}

// llmOpenSeconds is how many seconds past the last closed one a request
// can be kept apart in. A request ends at most a few milliseconds before
// the Recorder sees it, and the tick closes a second within about a
// second of its end, so two would do; a request later than the last
// open second (a tick held up for seconds) is counted in that second
// rather than lost.
const llmOpenSeconds = 8

// llmSecond is one open second's stats by phase.
type llmSecond struct {
	warmup, steady *LLMStats
}

// NewLLMRecorder returns an empty LLMRecorder.
func NewLLMRecorder() *LLMRecorder {
	return &LLMRecorder{warmup: NewLLMStats(), steady: NewLLMStats(), window: NewLLMStats(), outside: NewLLMStats()}
}

// SetGoal sets the objective goodput counts against (LLMStats.Good);
// call it before recording.
func (r *LLMRecorder) SetGoal(g LLMGoal) {
	r.mu.Lock()
	r.goal = g
	r.mu.Unlock()
}

// Record adds one finished request of the phase; inWindow is whether it
// was sent in the profile window (Sample.InWindow).
func (r *LLMRecorder) Record(phase Phase, inWindow bool, req *LLMRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		r.late++
		return
	}
	if r.keepSeconds {
		r.addToSecond(phase, req)
	}
	if phase == Warmup {
		r.warmup.Add(req)
		return
	}
	good := r.goal.Set() && r.goal.Met(req)
	add := func(st *LLMStats) {
		st.Add(req)
		if good {
			st.Good++
		}
	}
	add(r.steady)
	if inWindow {
		add(r.window)
	} else {
		add(r.outside)
	}
}

// KeepSeconds makes r keep each second's stats for CloseSeconds; call it
// before recording.
func (r *LLMRecorder) KeepSeconds() {
	r.mu.Lock()
	r.keepSeconds = true
	r.mu.Unlock()
}

// addToSecond counts req in the open second it ended in (the earliest
// open one when that one is closed, the last when it is further ahead).
// Called with r.mu held.
func (r *LLMRecorder) addToSecond(phase Phase, req *LLMRequest) {
	sec := min(max(int(req.End/time.Second), r.open), r.open+llmOpenSeconds-1)
	slot := &r.seconds[sec%llmOpenSeconds]
	st := &slot.steady
	if phase == Warmup {
		st = &slot.warmup
	}
	if *st == nil {
		if n := len(r.spare); n > 0 {
			*st, r.spare = r.spare[n-1], r.spare[:n-1]
		} else {
			*st = NewLLMStats()
		}
	}
	(*st).Add(req)
}

// CloseSeconds closes every second up to through (run clock, whole
// seconds) and calls emit for each that holds requests, with its warm-up
// and steady stats (nil for a phase without requests in it). emit runs
// with r locked and must copy what it keeps: the stats are reused once it
// returns. Over a run, the steady stats emitted add up to Snapshot's
// Steady exactly (and the warm-up's to Warmup) once the last second is
// closed (CloseAllSeconds).
func (r *LLMRecorder) CloseSeconds(through int, emit func(second int, warmup, steady *LLMStats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeThrough(through, emit)
}

// CloseAllSeconds closes every open second, as CloseSeconds does: what
// the run's last tick left.
func (r *LLMRecorder) CloseAllSeconds(emit func(second int, warmup, steady *LLMStats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeThrough(r.open+llmOpenSeconds-1, emit)
}

func (r *LLMRecorder) closeThrough(through int, emit func(second int, warmup, steady *LLMStats)) {
	// Past the open seconds every slot is empty: the seconds there are
	// closed without visiting them.
	last := min(through, r.open+llmOpenSeconds-1)
	defer func() { r.open = max(r.open, through+1) }()
	for ; r.open <= last; r.open++ {
		slot := &r.seconds[r.open%llmOpenSeconds]
		if slot.warmup == nil && slot.steady == nil {
			continue
		}
		emit(r.open, slot.warmup, slot.steady)
		for _, st := range []*LLMStats{slot.warmup, slot.steady} {
			if st != nil {
				st.reset()
				r.spare = append(r.spare, st)
			}
		}
		*slot = llmSecond{}
	}
}

// Merge adds everything o recorded to r (workers' recorders into the
// run's), its seconds kept apart (KeepSeconds) excepted. o must not be
// recording.
func (r *LLMRecorder) Merge(o *LLMRecorder) {
	if r == o {
		return
	}
	o.mu.Lock()
	snap := LLMSnapshot{Warmup: o.warmup.Clone(), Steady: o.steady.Clone(), Window: o.window.Clone(), Outside: o.outside.Clone(), Late: o.late}
	o.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warmup.Merge(snap.Warmup)
	r.steady.Merge(snap.Steady)
	r.window.Merge(snap.Window)
	r.outside.Merge(snap.Outside)
	r.late += snap.Late
}

// Freeze stops recording, as Recorder.Freeze does: later requests are
// counted as late only.
func (r *LLMRecorder) Freeze() {
	r.mu.Lock()
	r.frozen = true
	r.mu.Unlock()
}

// LLMSnapshot is a copy of what an LLMRecorder holds.
type LLMSnapshot struct {
	Warmup, Steady, Window, Outside *LLMStats
	Late                            int64
}

// Snapshot copies the recorded stats.
func (r *LLMRecorder) Snapshot() LLMSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return LLMSnapshot{Warmup: r.warmup.Clone(), Steady: r.steady.Clone(), Window: r.window.Clone(), Outside: r.outside.Clone(), Late: r.late}
}
