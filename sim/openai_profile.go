package sim

// vLLM's HTTP profiler control, POST /start_profile and /stop_profile,
// simulated: the window's requests go to a small Chrome trace file that the
// stop writes, gzipped and named like the traces vLLM's torch profiler
// writes to VLLM_TORCH_PROFILER_DIR.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// maxTraceRequests bounds the requests one simulated trace holds.
const maxTraceRequests = 100000

// llmProfiler is the state of the simulated vLLM profiler. As vLLM's, a
// session opened by /start_profile lasts until /stop_profile, and inside it
// the recording may start late (delay_iterations) and end early
// (max_iterations). The simulator counts each token it writes as one
// engine iteration.
type llmProfiler struct {
	// active mirrors session for the token writers' cheap check.
	active atomic.Bool

	mu      sync.Mutex
	session bool // between a start that took effect and a stop
	// recording: the window's requests are being kept; false before
	// delay_iterations and after max_iterations.
	recording bool
	prefix    string
	delay     int // iterations left before recording starts
	max       int // iterations to record; 0 for no bound
	iters     int // iterations recorded
	started   time.Time
	events    []traceRequest
	dropped   int
	traces    []string
	// starts and stops are when each start took effect and each stop
	// came, for tests.
	starts, stops []time.Time
}

// traceRequest is one request seen inside a window.
type traceRequest struct {
	rec     LLMStream
	arrived time.Time
	ended   time.Time
}

// note adds a finished answer to an open window.
func (p *llmProfiler) note(rec *LLMStream, arrived time.Time) {
	if !p.active.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.recording {
		return
	}
	if len(p.events) >= maxTraceRequests {
		p.dropped++
		return
	}
	r := traceRequest{rec: *rec, arrived: arrived, ended: time.Now()}
	r.rec.Gaps, r.rec.Planned = nil, nil
	p.events = append(p.events, r)
}

// step counts one iteration (a token written) of an open session: the
// recording starts after the session's delay and ends, its trace written,
// after its max iterations.
func (s *Server) profileStep() {
	p := &s.llm.prof
	if !p.active.Load() {
		return
	}
	p.mu.Lock()
	switch {
	case !p.session:
	case !p.recording && p.delay > 0:
		p.delay--
		if p.delay == 0 {
			p.recording, p.started = true, time.Now()
		}
	case p.recording && p.max > 0:
		p.iters++
		if p.iters >= p.max {
			// vLLM's worker stops its profiler here and writes the
			// trace; the session stays until /stop_profile.
			p.recording = false
			started, events, dropped, prefix := p.started, p.events, p.dropped, p.prefix
			p.events = nil
			p.mu.Unlock()
			_ = s.saveLLMTrace(prefix, started, events, dropped)
			return
		}
	}
	p.mu.Unlock()
}

// startProfileRequest is the body vLLM 0.32's /start_profile takes: every
// field optional, types strict, other fields ignored.
type startProfileRequest struct {
	Prefix          *string `json:"profile_prefix"`
	DelayIterations *int    `json:"delay_iterations"`
	MaxIterations   *int    `json:"max_iterations"`
}

// parseStartProfile reads /start_profile's body as vLLM validates it; the
// error is a 400's message.
func parseStartProfile(body []byte) (startProfileRequest, error) {
	var req startProfileRequest
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return req, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return req, fmt.Errorf("1 validation error: body: the request body must be a JSON object")
	}
	for name, dst := range map[string]any{"profile_prefix": &req.Prefix, "delay_iterations": &req.DelayIterations, "max_iterations": &req.MaxIterations} {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			continue
		}
		// Strict: no number in a string, no fraction for an integer.
		if err := strictJSON(raw, dst); err != nil {
			return req, fmt.Errorf("1 validation error: body.%s: %v", name, err)
		}
	}
	if p := req.Prefix; p != nil && !validProfilePrefix(*p) {
		return req, errors.New("profile_prefix must be 1-128 ASCII characters, start with a letter or number, and contain only letters, numbers, '.', '_', or '-'")
	}
	if d := req.DelayIterations; d != nil && *d < 0 {
		return req, errors.New("delay_iterations must be greater than or equal to 0")
	}
	if m := req.MaxIterations; m != nil && *m < 0 {
		return req, errors.New("max_iterations must be greater than or equal to 0")
	}
	return req, nil
}

// strictJSON decodes raw into dst (a **string or **int) without the
// conversions a strict validator refuses.
func strictJSON(raw json.RawMessage, dst any) error {
	switch d := dst.(type) {
	case **string:
		if raw[0] != '"' {
			return errors.New("input should be a valid string")
		}
		return json.Unmarshal(raw, d)
	case **int:
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return errors.New("input should be a valid integer")
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var n json.Number
		if err := dec.Decode(&n); err != nil {
			return errors.New("input should be a valid integer")
		}
		v, err := strconv.Atoi(n.String())
		if err != nil {
			return errors.New("input should be a valid integer")
		}
		*d = &v
		return nil
	}
	return fmt.Errorf("unknown field type %T", dst)
}

// validProfilePrefix is vLLM's rule for a trace file name prefix.
func validProfilePrefix(p string) bool {
	if len(p) < 1 || len(p) > 128 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// LLMTraces returns the paths of the trace files /stop_profile wrote.
func (s *Server) LLMTraces() []string {
	p := &s.llm.prof
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.traces...)
}

// profileControl answers /start_profile (start) or /stop_profile as vLLM
// 0.32 does: 200 with an empty body; a start while a session is open 409; a
// stop with none open 200 (vLLM ignores it); a body it refuses 400.
func (s *Server) profileControl(ctx *fasthttp.RequestCtx, start bool) {
	p := &s.llm.prof
	if !start {
		s.stopProfile(ctx)
		return
	}
	req, err := parseStartProfile(ctx.PostBody())
	if err != nil {
		writeOpenAIError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if d := s.cfg.LLM.ProfileStartDelay; d > 0 {
		// An engine slow to start its profiler: the session takes effect
		// at the end of the wait, answered or not.
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			return
		}
	}
	p.mu.Lock()
	if p.session {
		p.mu.Unlock()
		writeOpenAIError(ctx, fasthttp.StatusConflict, "A profiling session is already active. Call /stop_profile before starting another session.")
		return
	}
	p.session, p.recording, p.iters, p.events, p.dropped = true, true, 0, nil, 0
	p.prefix, p.delay, p.max = "", 0, 0
	if req.Prefix != nil {
		p.prefix = *req.Prefix
	}
	if req.DelayIterations != nil && *req.DelayIterations > 0 {
		p.delay, p.recording = *req.DelayIterations, false
	}
	if req.MaxIterations != nil {
		p.max = *req.MaxIterations
	}
	p.started = time.Now()
	p.starts = append(p.starts, p.started)
	p.active.Store(true)
	p.mu.Unlock()
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// stopProfile ends the session, writing the trace of a recording still
// going; with no session open it does nothing, as vLLM.
func (s *Server) stopProfile(ctx *fasthttp.RequestCtx) {
	p := &s.llm.prof
	p.mu.Lock()
	p.stops = append(p.stops, time.Now())
	if !p.session {
		p.mu.Unlock()
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	recording := p.recording
	p.session, p.recording = false, false
	p.active.Store(false)
	started, events, dropped, prefix := p.started, p.events, p.dropped, p.prefix
	p.events = nil
	p.mu.Unlock()
	if recording {
		if err := s.saveLLMTrace(prefix, started, events, dropped); err != nil {
			writeOpenAIError(ctx, fasthttp.StatusInternalServerError, "writing the trace: "+err.Error())
			return
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// saveLLMTrace writes a window's trace and makes it known.
func (s *Server) saveLLMTrace(prefix string, from time.Time, events []traceRequest, dropped int) error {
	path, err := s.writeLLMTrace(prefix, from, time.Now(), events, dropped)
	if err != nil {
		return err
	}
	p := &s.llm.prof
	p.mu.Lock()
	p.traces = append(p.traces, path)
	p.mu.Unlock()
	if s.cfg.LLM.OnTrace != nil {
		s.cfg.LLM.OnTrace(path)
	}
	return nil
}

// ProfileCalls returns when the simulator took each /start_profile (the
// session began) and each /stop_profile.
func (s *Server) ProfileCalls() (starts, stops []time.Time) {
	p := &s.llm.prof
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.starts...), append([]time.Time(nil), p.stops...)
}

// writeLLMTrace writes the window [from, to) as a Chrome trace: one event
// per request from arrival to its end, with its prefill (to the first
// token) inside it.
func (s *Server) writeLLMTrace(prefix string, from, to time.Time, reqs []traceRequest, dropped int) (string, error) {
	type event struct {
		Name string         `json:"name"`
		Ph   string         `json:"ph"`
		Ts   float64        `json:"ts"`
		Dur  float64        `json:"dur,omitempty"`
		Pid  int            `json:"pid"`
		Tid  int            `json:"tid"`
		Args map[string]any `json:"args,omitempty"`
	}
	// Microseconds since the Unix epoch, with the server's clock offset,
	// as a profiler on that machine would stamp them.
	us := func(t time.Time) float64 {
		return float64(t.Add(s.cfg.Profiler.ClockOffset).UnixNano()) / 1e3
	}
	events := []event{{Name: "profile window", Ph: "X", Ts: us(from), Dur: float64(to.Sub(from).Nanoseconds()) / 1e3, Pid: 1, Tid: 0,
		Args: map[string]any{"requests": len(reqs), "requests not kept": dropped}}}
	for i, r := range reqs {
		tid := 1 + i%64
		events = append(events, event{Name: r.rec.ID, Ph: "X", Ts: us(r.arrived), Dur: float64(r.ended.Sub(r.arrived).Nanoseconds()) / 1e3, Pid: 1, Tid: tid,
			Args: map[string]any{"endpoint": r.rec.Endpoint, "stream": r.rec.Stream, "prompt_tokens": r.rec.PromptTokens, "output_tokens": r.rec.Sent, "status": r.rec.Status, "fault": r.rec.Fault}})
		if r.rec.FirstToken > 0 {
			events = append(events, event{Name: "prefill", Ph: "X", Ts: us(r.arrived), Dur: float64(r.rec.FirstToken.Nanoseconds()) / 1e3, Pid: 1, Tid: tid})
		}
	}
	doc := map[string]any{"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": events,
		"deviceProperties": []any{}, "loadprof_sim": "a simulated trace, not PyTorch's profiler"}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(doc); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	dir := s.cfg.LLM.ProfileDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// vLLM puts the session's prefix before its worker's name.
	name := fmt.Sprintf("loadprof-sim_%d.%d.pt.trace.json.gz", os.Getpid(), to.UnixNano())
	if prefix != "" {
		name = prefix + "_" + name
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
