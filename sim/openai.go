package sim

// The simulator's OpenAI-compatible routes, as vLLM serves them on its
// REST port: POST /v1/completions and /v1/chat/completions (streamed as
// Server-Sent Events with "stream": true, or answered whole with usage),
// GET /v1/models, and vLLM's profiler control POST /start_profile and
// /stop_profile. Tokens go out on a schedule fixed at arrival (TTFT, then
// a gap per token), each written and flushed on its own from the
// connection's goroutine with one timer per stream, and the server keeps
// what it did (LLMStreams) for tests to compare against.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/payloads"
	"github.com/valyala/fasthttp"
)

// LLM configures the simulated language model behind the OpenAI-compatible
// routes. The zero value serves 16 tokens, 20ms to the first, 5ms apart.
type LLM struct {
	TTFT       time.Duration // arrival to the first token; 20ms when 0 and TokenDelay is 0 too
	TokenDelay time.Duration // the gap between two tokens; 5ms when 0 and TTFT is 0 too
	// TokenJitter moves every gap by a uniform amount in
	// [-TokenJitter, +TokenJitter], so the mean gap stays TokenDelay; it
	// is at most TokenDelay. The draws come from a generator seeded with
	// Seed, so a run with one client is reproducible.
	TokenJitter time.Duration
	Seed        uint64
	// OutputTokens is the answer's length when the request's max_tokens
	// does not cap it; 16 when 0.
	OutputTokens int
	// InputTokensPerWord turns a prompt's words (whitespace-separated, in
	// the prompt or the messages' text contents) into prompt tokens:
	// ceil(words × InputTokensPerWord), plus any token ids given. 1 when 0.
	InputTokensPerWord float64

	// Faults of the streams, for tests of a client. The HTTP failures are
	// Latency.ErrorRate and ErrorStatus, answered with an OpenAI-style
	// error body.
	Faults StreamFaults

	// ProfileDir, when set, serves vLLM's POST /start_profile and
	// /stop_profile: a stop writes a small Chrome trace of the window's
	// requests here (*.pt.trace.json.gz, like vLLM's torch profiler) and
	// calls OnTrace with its path. Without it the routes are absent, as
	// on a vLLM without VLLM_TORCH_PROFILER_DIR.
	ProfileDir string
	OnTrace    func(path string)
	// ProfileStartDelay makes /start_profile take this long before the
	// session takes effect and the answer goes out, as an engine busy
	// starting its profiler.
	ProfileStartDelay time.Duration

	// Capacity, when positive, makes the model batch-limited: up to
	// Capacity streams in flight are decoded at full speed, and an answer
	// that arrives with more in flight (itself included) has its token
	// gaps stretched by in-flight/Capacity, as a server whose decode batch
	// is full slows every stream. The stretch is fixed when the answer
	// arrives. At most maxLLMCapacity.
	Capacity int

	// KeepStreams, when positive, keeps the record of the first that
	// many answers (LLMStreams).
	KeepStreams int
}

// StreamFaults make a fraction of the answers misbehave after After
// tokens. The rates add up to at most 1; each answer has at most one.
type StreamFaults struct {
	StallRate float64       // pause for Stall, then go on
	Stall     time.Duration // 10s when 0
	CloseRate float64       // close the connection (no more chunks, no [DONE])
	// MalformedRate writes one SSE event whose data is not JSON, then
	// goes on with the answer (every token still sent).
	MalformedRate float64
	// After is how many tokens go out before the fault; half the answer
	// (at least 1) when 0.
	After int
}

func (l *LLM) withDefaults() {
	if l.TTFT == 0 && l.TokenDelay == 0 {
		l.TTFT, l.TokenDelay = 20*time.Millisecond, 5*time.Millisecond
	}
	if l.OutputTokens == 0 {
		l.OutputTokens = 16
	}
	if l.InputTokensPerWord == 0 {
		l.InputTokensPerWord = 1
	}
	if l.Faults.Stall == 0 {
		l.Faults.Stall = 10 * time.Second
	}
}

func (l *LLM) check() error {
	f := &l.Faults
	switch {
	case l.TTFT < 0:
		return setting.Invalid("sim.LLM.TTFT", l.TTFT.String(), "must not be negative")
	case l.TokenDelay < 0:
		return setting.Invalid("sim.LLM.TokenDelay", l.TokenDelay.String(), "must not be negative")
	case l.TokenJitter < 0 || l.TokenJitter > l.TokenDelay:
		return setting.Invalid("sim.LLM.TokenJitter", l.TokenJitter.String(), "must be between 0 and TokenDelay ("+l.TokenDelay.String()+"), so that the mean gap is TokenDelay")
	case l.OutputTokens < 1:
		return setting.Invalid("sim.LLM.OutputTokens", strconv.Itoa(l.OutputTokens), "must be at least 1")
	case !(l.InputTokensPerWord > 0) || math.IsInf(l.InputTokensPerWord, 0):
		return setting.Invalid("sim.LLM.InputTokensPerWord", fmt.Sprint(l.InputTokensPerWord), "must be a positive number")
	case !(f.StallRate >= 0 && f.StallRate <= 1):
		return setting.Invalid("sim.StreamFaults.StallRate", fmt.Sprint(f.StallRate), "must be between 0 and 1")
	case !(f.CloseRate >= 0 && f.CloseRate <= 1):
		return setting.Invalid("sim.StreamFaults.CloseRate", fmt.Sprint(f.CloseRate), "must be between 0 and 1")
	case !(f.MalformedRate >= 0 && f.MalformedRate <= 1):
		return setting.Invalid("sim.StreamFaults.MalformedRate", fmt.Sprint(f.MalformedRate), "must be between 0 and 1")
	case f.StallRate+f.CloseRate+f.MalformedRate > 1:
		return setting.Invalid("sim.StreamFaults.MalformedRate", fmt.Sprint(f.MalformedRate), fmt.Sprintf("with the stall rate %g and the close rate %g, more than 1 together", f.StallRate, f.CloseRate))
	case f.Stall < 0:
		return setting.Invalid("sim.StreamFaults.Stall", f.Stall.String(), "must not be negative")
	case f.After < 0:
		return setting.Invalid("sim.StreamFaults.After", strconv.Itoa(f.After), "must not be negative")
	case l.Capacity < 0 || l.Capacity > maxLLMCapacity:
		return setting.Invalid("sim.LLM.Capacity", strconv.Itoa(l.Capacity), fmt.Sprintf("must be between 0 (no limit) and %d", maxLLMCapacity))
	case l.KeepStreams < 0:
		return setting.Invalid("sim.LLM.KeepStreams", strconv.Itoa(l.KeepStreams), "must not be negative")
	}
	return nil
}

// LLMStream is what the simulator did with one OpenAI-compatible request.
// Times are the moments the writes of the chunks began: a client cannot
// read a token earlier.
type LLMStream struct {
	ID       string // the answer's id, "cmpl-N" or "chatcmpl-N"
	Endpoint string // "/v1/completions" or "/v1/chat/completions"
	Stream   bool
	Arrived  time.Duration // since the server started
	Status   int           // the HTTP status answered
	Fault    string        // "", "stall", "close", "malformed" or "error"

	PromptTokens int
	OutputTokens int // tokens the answer was to have
	Sent         int // tokens written (all of them when the whole answer was)
	// FirstToken is from arrival to the first token's write (streams), or
	// to the moment the whole answer was ready (no stream).
	FirstToken time.Duration
	// Gaps are the times between successive token writes, Sent-1 of them
	// (streams only); Planned the gaps the schedule asked for.
	Gaps    []time.Duration
	Planned []time.Duration
	// Err is why the stream ended early: the client went away, the
	// server closed, or the close fault.
	Err string
}

// maxLLMCapacity bounds LLM.Capacity.
const maxLLMCapacity = 1 << 16

// llmState is the OpenAI routes' share of the server.
type llmState struct {
	ids atomic.Int64
	// inFlight counts the answers planned and not yet finished
	// (LLM.Capacity).
	inFlight atomic.Int64

	rngMu sync.Mutex
	rng   *rand.Rand

	recMu   sync.Mutex
	records []LLMStream

	prof llmProfiler

	model []byte // the model's name as a JSON string
}

func (s *Server) startLLM() {
	st := &s.llm
	st.rng = rand.New(rand.NewPCG(s.cfg.LLM.Seed, s.cfg.LLM.Seed^0x9e3779b97f4a7c15))
	st.model, _ = json.Marshal(s.cfg.Model)
}

// roll draws a uniform number in [0, 1) from the seeded generator.
func (st *llmState) roll() float64 {
	st.rngMu.Lock()
	defer st.rngMu.Unlock()
	return st.rng.Float64()
}

// plan draws the n-1 gaps of an answer of n tokens, stretched by stretch
// (1 below LLM.Capacity).
func (st *llmState) plan(l *LLM, n int, stretch float64) []time.Duration {
	gaps := make([]time.Duration, max(n-1, 0))
	st.rngMu.Lock()
	for i := range gaps {
		g := l.TokenDelay
		if l.TokenJitter > 0 {
			g += time.Duration(st.rng.Int64N(2*int64(l.TokenJitter)+1)) - l.TokenJitter
		}
		gaps[i] = time.Duration(float64(g) * stretch)
	}
	st.rngMu.Unlock()
	return gaps
}

func (st *llmState) keep(rec *LLMStream, limit int) {
	st.recMu.Lock()
	if len(st.records) < limit {
		st.records = append(st.records, *rec)
	}
	st.recMu.Unlock()
}

// LLMStreams returns the kept records of the OpenAI-compatible answers
// (LLM.KeepStreams), in the order they finished.
func (s *Server) LLMStreams() []LLMStream {
	s.llm.recMu.Lock()
	defer s.llm.recMu.Unlock()
	return append([]LLMStream(nil), s.llm.records...)
}

// OpenAIBaseURL is the base URL an OpenAI client takes ("http://HOST:PORT/v1").
func (s *Server) OpenAIBaseURL() string {
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.RESTAddr() + "/v1"
}

// handleOpenAI serves the OpenAI-compatible and vLLM profiler routes; it
// returns false for any other path.
func (s *Server) handleOpenAI(ctx *fasthttp.RequestCtx, path string) bool {
	var ep payloads.OpenAIEndpoint
	switch path {
	case "/v1/completions":
		ep = payloads.Completions
	case "/v1/chat/completions":
		ep = payloads.ChatCompletions
	case "/v1/models":
		if !ctx.IsGet() {
			writeOpenAIError(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
			return true
		}
		s.openAIModels(ctx)
		return true
	case "/start_profile", "/stop_profile":
		if s.cfg.LLM.ProfileDir == "" {
			return false // absent, as on vLLM without its profiler
		}
		if !ctx.IsPost() {
			writeOpenAIError(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
			return true
		}
		s.profileControl(ctx, path == "/start_profile")
		return true
	default:
		return false
	}
	if !ctx.IsPost() {
		writeOpenAIError(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
		return true
	}
	s.networkDelay()
	s.openAICompletion(ctx, ep)
	return true
}

func (s *Server) openAIModels(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	created := s.start.Unix()
	m := string(s.llm.model)
	fmt.Fprintf(ctx, `{"object":"list","data":[{"id":%s,"object":"model","created":%d,"owned_by":"loadprof-sim","root":%s,"parent":null,"max_model_len":%d}]}`,
		m, created, m, 1<<16)
}

// openAIErrorTypes are the error types vLLM names for these statuses.
var openAIErrorTypes = map[int]string{
	400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
	404: "NotFoundError", 405: "MethodNotAllowed", 409: "Conflict", 422: "UnprocessableEntityError",
	429: "RateLimitError", 500: "InternalServerError", 503: "ServiceUnavailableError",
}

// writeOpenAIError answers with the error object OpenAI's API and vLLM
// send, which OpenAI's clients turn into their own exception types.
func writeOpenAIError(ctx *fasthttp.RequestCtx, status int, msg string) {
	typ, ok := openAIErrorTypes[status]
	if !ok {
		typ = "BadRequestError"
		if status >= 500 {
			typ = "InternalServerError"
		}
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": status}})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// promptTokens counts a prompt's tokens by LLM.InputTokensPerWord.
func (l *LLM) promptTokens(r *payloads.OpenAIRequest) int {
	return int(math.Ceil(float64(r.PromptWords())*l.InputTokensPerWord-1e-9)) + r.PromptTokenIDs
}

func (s *Server) openAICompletion(ctx *fasthttp.RequestCtx, ep payloads.OpenAIEndpoint) {
	arrived := time.Now()
	l := &s.cfg.LLM
	st := &s.llm
	prefix := "cmpl-"
	if ep == payloads.ChatCompletions {
		prefix = "chatcmpl-"
	}
	rec := &LLMStream{ID: prefix + strconv.FormatInt(st.ids.Add(1), 10), Endpoint: ep.String(), Arrived: arrived.Sub(s.start)}
	fail := func(status int, fault, msg string) {
		writeOpenAIError(ctx, status, msg)
		rec.Status, rec.Fault = status, fault
		s.llmDone(rec, arrived)
	}
	if want := s.cfg.Authorization; want != "" && string(ctx.Request.Header.Peek("Authorization")) != want {
		fail(fasthttp.StatusUnauthorized, "", "missing or wrong Authorization header")
		return
	}
	req, err := payloads.ParseOpenAIBody(ctx.PostBody(), ep)
	if err != nil {
		fail(fasthttp.StatusBadRequest, "", err.Error())
		return
	}
	rec.Stream = req.Stream
	switch {
	case req.Model != s.cfg.Model:
		fail(fasthttp.StatusNotFound, "", fmt.Sprintf("The model `%s` does not exist.", req.Model))
		return
	case req.N != 1 || req.Prompts > 1:
		fail(fasthttp.StatusBadRequest, "", "the simulator answers one prompt with one choice (n=1)")
		return
	}
	if e := &s.cfg.Latency; e.ErrorRate > 0 && st.roll() < e.ErrorRate {
		fail(e.ErrorStatus, "error", "simulated failure")
		return
	}
	n, finish := l.OutputTokens, "stop"
	if req.MaxTokens > 0 && req.MaxTokens <= n {
		n, finish = req.MaxTokens, "length"
	}
	rec.PromptTokens, rec.OutputTokens = l.promptTokens(req), n
	stretch := 1.0
	if inFlight := st.inFlight.Add(1); l.Capacity > 0 && inFlight > int64(l.Capacity) {
		stretch = float64(inFlight) / float64(l.Capacity)
	}
	rec.Planned = st.plan(l, n, stretch)
	fault, after := "", 0
	if f := &l.Faults; f.StallRate+f.CloseRate+f.MalformedRate > 0 {
		switch u := st.roll(); {
		case u < f.StallRate:
			fault = "stall"
		case u < f.StallRate+f.CloseRate:
			fault = "close"
		case u < f.StallRate+f.CloseRate+f.MalformedRate:
			fault = "malformed"
		}
		if after = f.After; after == 0 {
			after = max(n/2, 1)
		}
		after = min(after, n)
	}
	rec.Fault, rec.Status = fault, fasthttp.StatusOK
	a := &answer{s: s, rec: rec, ep: ep, arrived: arrived, created: arrived.Unix(), finish: finish,
		includeUsage: req.IncludeUsage, fault: fault, faultAfter: after}
	if !req.Stream {
		a.whole(ctx)
		return
	}
	ctx.SetContentType("text/event-stream; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	// Headers go out at once, as a streaming server's do; the tokens
	// follow on their schedule.
	ctx.Response.ImmediateHeaderFlush = true
	a.conn = ctx.Conn()
	ctx.Response.SetBodyStream(a, -1)
}

// llmDone keeps an answer's record and shows it to an open profile window.
func (s *Server) llmDone(rec *LLMStream, arrived time.Time) {
	if n := s.cfg.LLM.KeepStreams; n > 0 {
		s.llm.keep(rec, n)
	}
	s.llm.prof.note(rec, arrived)
}

// answer is one OpenAI answer being written. As a response body stream it
// is written by fasthttp's connection goroutine through WriteTo, one chunk
// (flushed) per token.
type answer struct {
	s            *Server
	rec          *LLMStream
	ep           payloads.OpenAIEndpoint
	arrived      time.Time
	created      int64
	finish       string
	includeUsage bool
	fault        string
	faultAfter   int
	conn         interface{ Close() error }

	buf      []byte
	done     bool
	released bool // its slot among the streams in flight is given back
}

// tokenText is the text of the i-th token: a word with its leading space,
// as a BPE tokenizer splits English.
func tokenText(i int) string { return simWords[i%len(simWords)] }

var simWords = [...]string{" the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", " and", " runs", " away", " into", " tall", " grass", "."}

// lastDue is when the answer's last token is due.
func (a *answer) lastDue() time.Time {
	t := a.arrived.Add(a.s.cfg.LLM.TTFT)
	for _, g := range a.rec.Planned {
		t = t.Add(g)
	}
	return t
}

// wait holds until t, or returns an error when the server closes.
func (a *answer) wait(timer *time.Timer, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return nil
	case <-a.s.closing:
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		return errClosing
	}
}

func (a *answer) Read([]byte) (int, error) {
	// fasthttp frames chunks with WriteTo (SupportsBodyWriteTo), HTTP/1.0
	// clients included; it reads only on paths the simulator does not
	// take, such as response compression.
	return 0, errors.New("the simulator's streams are written, not read")
}

// SupportsBodyWriteTo lets fasthttp write each Write of WriteTo as one
// flushed chunk.
func (a *answer) SupportsBodyWriteTo() bool { return true }

// Close ends the answer's record if WriteTo never ran (the client left
// before the headers went out).
func (a *answer) Close() error {
	if !a.done {
		a.rec.Err = "the answer was never written"
		a.finishRecord()
	}
	return nil
}

// release gives the answer's place among the streams in flight back,
// once.
func (a *answer) release() {
	if !a.released {
		a.released = true
		a.s.llm.inFlight.Add(-1)
	}
}

func (a *answer) finishRecord() {
	if a.done {
		return
	}
	a.done = true
	a.release()
	a.s.llmDone(a.rec, a.arrived)
}

// WriteTo writes the event stream: a chunk per token at its due time, the
// usage chunk when asked for, and data: [DONE].
func (a *answer) WriteTo(w io.Writer) (int64, error) {
	defer a.finishRecord()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var written int64
	send := func(b []byte) error {
		n, err := w.Write(b)
		written += int64(n)
		if err != nil {
			a.rec.Err = "write: " + err.Error()
		}
		return err
	}
	n := a.rec.OutputTokens
	var last time.Time
	due := a.arrived.Add(a.s.cfg.LLM.TTFT)
	for i := 0; i < n; i++ {
		if i > 0 {
			due = due.Add(a.rec.Planned[i-1])
		}
		if a.fault != "" && i == a.faultAfter {
			if err := a.playFault(send); err != nil {
				return written, err
			}
			if a.fault == "stall" {
				// The model paused: the rest of the schedule moves.
				due = due.Add(a.s.cfg.LLM.Faults.Stall)
			}
		}
		if err := a.wait(timer, due); err != nil {
			a.rec.Err = err.Error()
			return written, err
		}
		a.buf = a.buf[:0]
		if i == 0 && a.ep == payloads.ChatCompletions {
			a.buf = a.appendChunk(a.buf, -1) // the role, with the first token
		}
		a.buf = a.appendChunk(a.buf, i)
		// Stamped as the write begins: the client cannot read the token
		// before then, while the write's return may come late on a busy
		// machine, after the client has read it.
		now := time.Now()
		if err := send(a.buf); err != nil {
			return written, err
		}
		if i == 0 {
			a.rec.FirstToken = now.Sub(a.arrived)
		} else {
			a.rec.Gaps = append(a.rec.Gaps, now.Sub(last))
		}
		last = now
		a.rec.Sent++
		a.s.profileStep()
	}
	a.buf = a.buf[:0]
	if a.includeUsage {
		a.buf = a.appendUsageChunk(a.buf)
	}
	a.buf = append(a.buf, "data: [DONE]\n\n"...)
	// The answer is decoded: its slot goes back before the client can
	// read [DONE] and send its next request (LLM.Capacity).
	a.release()
	if err := send(a.buf); err != nil {
		return written, err
	}
	return written, nil
}

// playFault plays the answer's fault after faultAfter tokens.
func (a *answer) playFault(send func([]byte) error) error {
	switch a.fault {
	case "stall":
		// The schedule moves by the stall (WriteTo): nothing to do here.
	case "close":
		a.rec.Err = "closed by the close fault"
		_ = a.conn.Close()
		return errors.New(a.rec.Err)
	case "malformed":
		a.buf = append(a.buf[:0], `data: {"id":"`...)
		a.buf = append(a.buf, a.rec.ID...)
		a.buf = append(a.buf, `","choices":[{"index":0,`...)
		a.buf = append(a.buf, "\n\n"...)
		return send(a.buf)
	}
	return nil
}

// appendHead writes an answer object's common members.
func (a *answer) appendHead(b []byte, object string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, a.rec.ID...)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"model":`...)
	return append(b, a.s.llm.model...)
}

// appendChunk writes the SSE event of token i, or with i -1 chat's first
// delta, which carries the role.
func (a *answer) appendChunk(b []byte, i int) []byte {
	b = append(b, "data: "...)
	last := i == a.rec.OutputTokens-1
	if a.ep == payloads.Completions {
		b = a.appendHead(b, "text_completion")
		b = append(b, `,"choices":[{"index":0,"text":"`...)
		b = append(b, tokenText(i)...)
		b = append(b, `","logprobs":null,"finish_reason":`...)
	} else {
		b = a.appendHead(b, "chat.completion.chunk")
		if i < 0 {
			b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`...)
			return append(b, "\n\n"...)
		}
		b = append(b, `,"choices":[{"index":0,"delta":{"content":"`...)
		b = append(b, tokenText(i)...)
		b = append(b, `"},"logprobs":null,"finish_reason":`...)
	}
	if last {
		b = append(b, '"')
		b = append(b, a.finish...)
		b = append(b, `","stop_reason":null}]}`...)
	} else {
		b = append(b, `null,"stop_reason":null}]}`...)
	}
	return append(b, "\n\n"...)
}

func (a *answer) appendUsage(b []byte) []byte {
	b = append(b, `"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(a.rec.PromptTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(a.rec.PromptTokens+a.rec.Sent), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(a.rec.Sent), 10)
	return append(b, '}')
}

func (a *answer) appendUsageChunk(b []byte) []byte {
	b = append(b, "data: "...)
	object := "text_completion"
	if a.ep == payloads.ChatCompletions {
		object = "chat.completion.chunk"
	}
	b = a.appendHead(b, object)
	b = append(b, `,"choices":[],`...)
	b = a.appendUsage(b)
	return append(b, "}\n\n"...)
}

// whole answers a request without "stream" once its last token is due.
func (a *answer) whole(ctx *fasthttp.RequestCtx) {
	defer a.finishRecord()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	n := a.rec.OutputTokens
	end := a.lastDue()
	if a.fault == "stall" {
		end = end.Add(a.s.cfg.LLM.Faults.Stall)
	}
	if err := a.wait(timer, end); err != nil {
		a.rec.Err = err.Error()
		ctx.SetConnectionClose()
		writeOpenAIError(ctx, fasthttp.StatusServiceUnavailable, "the simulator is shutting down")
		a.rec.Status = fasthttp.StatusServiceUnavailable
		return
	}
	if a.fault == "close" {
		a.rec.Err = "closed by the close fault"
		_ = ctx.Conn().Close()
		ctx.SetConnectionClose()
		return
	}
	a.rec.FirstToken = time.Since(a.arrived)
	a.rec.Sent = n
	var text []byte
	for i := 0; i < n; i++ {
		text = append(text, tokenText(i)...)
		a.s.profileStep()
	}
	b := make([]byte, 0, 256+len(text))
	if a.ep == payloads.Completions {
		b = a.appendHead(b, "text_completion")
		b = append(b, `,"choices":[{"index":0,"text":"`...)
		b = append(b, text...)
		b = append(b, `","logprobs":null,"finish_reason":"`...)
	} else {
		b = a.appendHead(b, "chat.completion")
		b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":"`...)
		b = append(b, text...)
		b = append(b, `"},"logprobs":null,"finish_reason":"`...)
	}
	b = append(b, a.finish...)
	b = append(b, `","stop_reason":null}],`...)
	b = a.appendUsage(b)
	b = append(b, '}')
	if a.fault == "malformed" {
		b = b[:len(b)/2] // a body cut short: not JSON
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// Started is when the server started: LLMStream.Arrived counts from it.
func (s *Server) Started() time.Time { return s.start }
