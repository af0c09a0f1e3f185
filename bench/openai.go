package bench

// OpenAI-compatible (LLM) REST targets: POST /v1/completions and
// /v1/chat/completions, recognised from the URL's path as the V2 route
// is. Their payloads are OpenAI request bodies, and their answers are
// timed token by token (load.LLMTarget): the result gets TTFT, ITL, TPOT,
// end-to-end latency and token counts beside the usual latency.

import (
	"context"
	"crypto/tls"
	"net/url"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/report"
)

// openAIEndpoint recognises an OpenAI-compatible REST URL.
func openAIEndpoint(cfg Config) (payloads.OpenAIEndpoint, bool) {
	if cfg.URL == "" || cfg.GRPC.Addr != "" {
		return 0, false
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return 0, false
	}
	return payloads.OpenAIEndpointOf(u.Path)
}

// loadPayloads reads the run's payloads in the target's format.
func loadPayloads(cfg Config) (*payloads.Set, error) {
	opts := payloads.Options{Stdin: cfg.Stdin, MaxBytes: cfg.MaxPayloadBytes}
	if ep, ok := openAIEndpoint(cfg); ok {
		return payloads.LoadOpenAI(cfg.DataPath, ep, opts)
	}
	return payloads.Load(cfg.DataPath, opts)
}

// prepareOpenAIREST readies an OpenAI-compatible target. Each body is sent
// as given: "stream": true gets an event stream, timed event by event, and
// a body without it one answer, timed as one event.
func prepareOpenAIREST(ctx context.Context, cfg Config, set *payloads.Set, tlsConfig *tls.Config) (*target, error) {
	if cfg.V2Binary {
		return nil, &InputError{setting.Errorf("bench.Config.V2Binary", "bench.Config.V2Binary needs a V2 target, not an OpenAI-compatible one")}
	}
	bodies := make([][]byte, set.Len())
	streamed := make([]bool, set.Len())
	for i, p := range set.Payloads {
		bodies[i], streamed[i] = p.Body, p.OpenAI != nil && p.OpenAI.Stream
	}
	llm := load.NewLLMRecorder()
	if cfg.SLO != nil && cfg.SLO.HasLLM() {
		llm.SetGoal(llmGoal(cfg.SLO.RequestBounds()))
	}
	rest, err := load.NewREST(load.RESTConfig{
		URL: cfg.URL, Headers: cfg.Headers, Bodies: bodies, Timeout: cfg.Timeout,
		MaxResponseBytes: cfg.MaxResponseBytes, TLS: tlsConfig, Engine: cfg.RESTEngine,
		LLM: &load.LLMTarget{Recorder: llm, Streamed: streamed},
	})
	if err != nil {
		return nil, &InputError{err}
	}
	name := RedactURL(cfg.URL)
	return &target{name: name, kind: "rest", protocol: report.ProtocolOpenAI, tr: rest, engine: rest.Engine(), llm: llm,
		preflight: func(ctx context.Context) error { return preflightREST(ctx, rest, set, name, nil) }}, nil
}

// llmGoal is the per-request goal of the objective's LLM terms.
func llmGoal(b report.RequestBounds) load.LLMGoal {
	d := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	return load.LLMGoal{TTFT: d(b.TTFTMs), ITLMax: d(b.ITLMaxMs), ITLMean: d(b.ITLMeanMs), TPOT: d(b.TPOTMs), E2E: d(b.E2EMs)}
}

// addLLM puts the steady requests' stream figures in res, and their
// goodput when the run has an objective with LLM terms; span is the
// steady phase's, which output_tokens_per_s and the goodput rate divide
// by.
func addLLM(res *report.Result, st *load.LLMStats, span time.Duration, cfg Config) error {
	ttft, itl, tpot, e2e := report.StatsOf(st.TTFT), report.StatsOf(st.ITL), report.StatsOf(st.TPOT), report.StatsOf(st.E2E)
	res.TTFT, res.ITL, res.TPOT, res.E2E = &ttft, &itl, &tpot, &e2e
	out, in := st.OutputTokens, st.InputTokens
	res.OutputTokens, res.InputTokens = &out, &in
	var perS float64
	if span > 0 {
		perS = float64(st.TimedOutputTokens) / span.Seconds()
	}
	res.OutputTokensPerS = &perS
	if n := st.NoOutput; n > 0 {
		res.StreamsWithoutOutput = &n
	}
	if n := st.UsageBelowChunks; n > 0 {
		res.UsageBelowChunks = &n
	}
	if cfg.SLO != nil && cfg.SLO.HasLLM() {
		g := &report.Goodput{Requests: st.Good, SLO: cfg.SLOSpec}
		if st.Requests > 0 {
			g.Share = float64(st.Good) / float64(st.Requests)
		}
		if span > 0 {
			g.Rate = float64(st.Good) / span.Seconds()
		}
		res.Goodput = g
	}
	hs, err := report.EncodeLLMHistograms(st.TTFT, st.ITL, st.TPOT, st.E2E, st.TimedOutputTokens)
	if err == nil {
		err = hs.SetOutputRate(st.OutputRate)
	}
	if err != nil {
		return err
	}
	res.LLMHistograms = &hs
	if st.OutputRate.TotalCount() > 0 {
		rate := report.RateStatsOf(st.OutputRate)
		res.OutputTokensPerSPerRequest = &rate
	}
	return nil
}

// addLLMWindow splits the steady streams by the profile window: those
// that started inside it and the others.
func addLLMWindow(res *report.Result, window, outside *load.LLMStats) error {
	for _, side := range []struct {
		st  *load.LLMStats
		dst **report.LLMSlice
	}{{window, &res.LLMWindow}, {outside, &res.LLMOutside}} {
		if side.st == nil {
			continue
		}
		hs, err := report.EncodeLLMHistograms(side.st.TTFT, side.st.ITL, side.st.TPOT, side.st.E2E, side.st.TimedOutputTokens)
		if err != nil {
			return err
		}
		if *side.dst, err = report.NewLLMSlice(side.st.Requests, side.st.OutputTokens, hs); err != nil {
			return err
		}
	}
	return nil
}
