package sim

// vLLM's HTTP profiler control, POST /start_profile and /stop_profile,
// simulated: the window's requests go to a small Chrome trace file that the
// stop writes, gzipped and named like the traces vLLM's torch profiler
// writes to VLLM_TORCH_PROFILER_DIR.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// maxTraceRequests bounds the requests one simulated trace holds.
const maxTraceRequests = 100000

// llmProfiler is the state of the simulated vLLM profiler.
type llmProfiler struct {
	mu      sync.Mutex
	running bool
	started time.Time
	events  []traceRequest
	dropped int
	traces  []string
}

// traceRequest is one request seen inside a window.
type traceRequest struct {
	rec     LLMStream
	arrived time.Time
	ended   time.Time
}

// note adds a finished answer to an open window.
func (p *llmProfiler) note(rec *LLMStream, arrived time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
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

// LLMTraces returns the paths of the trace files /stop_profile wrote.
func (s *Server) LLMTraces() []string {
	p := &s.llm.prof
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.traces...)
}

// profileControl answers /start_profile (start) or /stop_profile as vLLM
// does: 200 with an empty body.
func (s *Server) profileControl(ctx *fasthttp.RequestCtx, start bool) {
	p := &s.llm.prof
	p.mu.Lock()
	if start {
		if p.running {
			p.mu.Unlock()
			writeOpenAIError(ctx, fasthttp.StatusInternalServerError, "the profiler is already running")
			return
		}
		p.running, p.started, p.events, p.dropped = true, time.Now(), nil, 0
		p.mu.Unlock()
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	if !p.running {
		p.mu.Unlock()
		writeOpenAIError(ctx, fasthttp.StatusInternalServerError, "the profiler is not running")
		return
	}
	p.running = false
	started, events, dropped := p.started, p.events, p.dropped
	p.events = nil
	p.mu.Unlock()
	path, err := s.writeLLMTrace(started, time.Now(), events, dropped)
	if err != nil {
		writeOpenAIError(ctx, fasthttp.StatusInternalServerError, "writing the trace: "+err.Error())
		return
	}
	p.mu.Lock()
	p.traces = append(p.traces, path)
	p.mu.Unlock()
	if s.cfg.LLM.OnTrace != nil {
		s.cfg.LLM.OnTrace(path)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// writeLLMTrace writes the window [from, to) as a Chrome trace: one event
// per request from arrival to its end, with its prefill (to the first
// token) inside it.
func (s *Server) writeLLMTrace(from, to time.Time, reqs []traceRequest, dropped int) (string, error) {
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
	name := fmt.Sprintf("loadprof-sim_%d.%d.pt.trace.json.gz", os.Getpid(), to.UnixMilli())
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
