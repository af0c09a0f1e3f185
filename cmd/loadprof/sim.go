package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
	"github.com/spf13/pflag"
)

// simFlags are the simulator's settings, shared by sim and demo.
type simFlags struct {
	model             string
	latency, jitter   time.Duration
	stall, stallEvery time.Duration
	errorRate         float64
	errorStatus       int
	workers           int
	inputs            []string
	restAddr          string
	grpcAddr          string
	tlsCert, tlsKey   string
	clientCA          string
	signatureName     string
	traceEvents       int
	clockOffset       time.Duration
	networkDelay      time.Duration

	// The OpenAI-compatible routes.
	ttft, tokenDelay, tokenJitter time.Duration
	tokenSeed                     uint64
	outputTokens                  int
	llmCapacity                   int
	inputTokensPerWord            float64
	streamStallRate               float64
	streamStall                   time.Duration
	streamCloseRate               float64
	streamMalformedRate           float64
	streamFaultAfter              int
	profileDir                    string
}

func (s *simFlags) register(fs *pflag.FlagSet, restDefault, grpcDefault string) {
	fs.StringVar(&s.restAddr, "rest", restDefault, "REST listen address (TF Serving's --rest_api_port; V2 REST too); empty for none")
	fs.StringVar(&s.grpcAddr, "grpc", grpcDefault, "gRPC listen address (TF Serving's --port; V2 GRPCInferenceService too); empty for none")
	fs.StringVar(&s.model, "model", "test_model", "model name")
	fs.StringVar(&s.signatureName, "signature", "serving_default", "signature name")
	fs.StringArrayVar(&s.inputs, "input", nil, "signature input NAME:TYPE[:DIMS], e.g. x:float:-1,4 or text:string:-1 (repeatable; default x:float:-1,4)")
	fs.DurationVar(&s.latency, "latency", 2*time.Millisecond, "fixed service time of a predict call")
	fs.DurationVar(&s.jitter, "jitter", time.Millisecond, "plus a uniform random part in [0, jitter)")
	fs.DurationVar(&s.stall, "stall", 0, "a periodic server-wide pause of this length (with --stall-every)")
	fs.DurationVar(&s.stallEvery, "stall-every", time.Second, "period of the pauses")
	fs.Float64Var(&s.errorRate, "error-rate", 0, "fraction of predict calls that fail")
	fs.IntVar(&s.errorStatus, "error-status", 503, "HTTP status of the simulated failures")
	fs.IntVar(&s.workers, "workers", 0, "serve calls with this many workers and queue the rest (capacity = workers / latency); 0: unlimited")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "serve REST as HTTPS and gRPC over TLS with this certificate (PEM; with --tls-key)")
	fs.StringVar(&s.tlsKey, "tls-key", "", "the key of --tls-cert (PEM)")
	fs.StringVar(&s.clientCA, "client-ca", "", "require client certificates signed by this CA (mutual TLS)")
	fs.DurationVar(&s.clockOffset, "clock-offset", 0, "run the simulator's clock this far ahead of this machine's in its profile traces (negative: behind), like a server on another machine")
	fs.DurationVar(&s.networkDelay, "network-delay", 0, "hold each predict call this long before the server's clock starts, like a network in between: the client sees it, the server's metrics (/monitoring/prometheus/metrics) do not")
	fs.IntVar(&s.traceEvents, "trace-events", 0, "add this many GPU kernel events to each profile trace (10000000 is about 140 MB), to try big traces")
	fs.DurationVar(&s.ttft, "ttft", 20*time.Millisecond, "OpenAI routes: time from a request's arrival to its first token")
	fs.DurationVar(&s.tokenDelay, "token-delay", 5*time.Millisecond, "OpenAI routes: time between two tokens")
	fs.DurationVar(&s.tokenJitter, "token-jitter", 0, "OpenAI routes: move each gap between tokens by a uniform amount in [-D, +D] (at most --token-delay; the mean stays --token-delay)")
	fs.Uint64Var(&s.tokenSeed, "token-seed", 1, "OpenAI routes: seed of --token-jitter and of the fault draws")
	fs.IntVar(&s.outputTokens, "output-tokens", 16, "OpenAI routes: tokens per answer; a request's max_tokens caps it")
	fs.IntVar(&s.llmCapacity, "llm-capacity", 0, "OpenAI routes: streams decoded at full speed; an answer arriving with more in flight has its token gaps stretched by in-flight/capacity, like a server with a full batch (0: no limit)")
	fs.Float64Var(&s.inputTokensPerWord, "input-tokens-per-word", 1, "OpenAI routes: prompt tokens = ceil(words of the prompt or the messages' text × this), plus any token ids")
	fs.Float64Var(&s.streamStallRate, "stream-stall-rate", 0, "OpenAI routes: fraction of answers that pause for --stream-stall mid-stream")
	fs.DurationVar(&s.streamStall, "stream-stall", 10*time.Second, "OpenAI routes: length of the --stream-stall-rate pause")
	fs.Float64Var(&s.streamCloseRate, "stream-close-rate", 0, "OpenAI routes: fraction of answers whose connection closes mid-stream")
	fs.Float64Var(&s.streamMalformedRate, "stream-malformed-rate", 0, "OpenAI routes: fraction of answers with one SSE event mid-stream whose data is not JSON")
	fs.IntVar(&s.streamFaultAfter, "stream-fault-after", 0, "OpenAI routes: tokens sent before a stream fault; 0: half the answer")
	fs.StringVar(&s.profileDir, "profile-dir", "", "serve vLLM's POST /start_profile and /stop_profile, writing a small trace of each window here (like VLLM_TORCH_PROFILER_DIR)")
}

func (s *simFlags) config() (sim.Config, error) {
	cfg := sim.Config{
		REST: s.restAddr, GRPC: s.grpcAddr,
		Model: s.model,
		Latency: sim.Latency{
			Fixed: s.latency, Jitter: s.jitter, Stall: s.stall, StallEvery: s.stallEvery,
			ErrorRate: s.errorRate, ErrorStatus: s.errorStatus, Workers: s.workers,
		},
		Profiler:     sim.ProfilerConfig{TraceEvents: s.traceEvents, ClockOffset: s.clockOffset},
		NetworkDelay: s.networkDelay,
		LLM: sim.LLM{
			TTFT: s.ttft, TokenDelay: s.tokenDelay, TokenJitter: s.tokenJitter, Seed: s.tokenSeed,
			OutputTokens: s.outputTokens, InputTokensPerWord: s.inputTokensPerWord, Capacity: s.llmCapacity,
			Faults: sim.StreamFaults{
				StallRate: s.streamStallRate, Stall: s.streamStall, CloseRate: s.streamCloseRate,
				MalformedRate: s.streamMalformedRate, After: s.streamFaultAfter,
			},
			ProfileDir: s.profileDir,
		},
	}
	if s.traceEvents < 0 {
		return cfg, fmt.Errorf("--trace-events %d: must not be negative", s.traceEvents)
	}
	if err := firstError(
		within("--error-rate", s.errorRate, 0, 1),
		nonNegativeDuration("--latency", s.latency),
		nonNegativeDuration("--jitter", s.jitter),
		nonNegativeDuration("--stall", s.stall),
		nonNegativeDuration("--stall-every", s.stallEvery),
		nonNegativeDuration("--network-delay", s.networkDelay),
		atLeast("--workers", s.workers, 0),
		nonNegativeDuration("--ttft", s.ttft),
		nonNegativeDuration("--token-delay", s.tokenDelay),
		nonNegativeDuration("--token-jitter", s.tokenJitter),
		atLeast("--output-tokens", s.outputTokens, 1),
		within("--stream-stall-rate", s.streamStallRate, 0, 1),
		within("--stream-close-rate", s.streamCloseRate, 0, 1),
		within("--stream-malformed-rate", s.streamMalformedRate, 0, 1),
		positiveDuration("--stream-stall", s.streamStall),
		atLeast("--stream-fault-after", s.streamFaultAfter, 0),
	); err != nil {
		return cfg, err
	}
	switch {
	case s.ttft == 0 && s.tokenDelay == 0:
		return cfg, fmt.Errorf("--ttft and --token-delay: one of them must be above 0")
	case s.tokenJitter > s.tokenDelay:
		return cfg, fmt.Errorf("--token-jitter %v: must be at most --token-delay %v, so that the mean gap is --token-delay", s.tokenJitter, s.tokenDelay)
	case !(s.inputTokensPerWord > 0) || math.IsInf(s.inputTokensPerWord, 0):
		return cfg, fmt.Errorf("--input-tokens-per-word %g: must be a positive number", s.inputTokensPerWord)
	case s.streamStallRate+s.streamCloseRate+s.streamMalformedRate > 1:
		return cfg, fmt.Errorf("--stream-stall-rate, --stream-close-rate and --stream-malformed-rate: %g together, must be at most 1", s.streamStallRate+s.streamCloseRate+s.streamMalformedRate)
	}
	if s.errorStatus < 400 || s.errorStatus > 599 {
		return cfg, fmt.Errorf("--error-status %d: must be an HTTP error status, 400 to 599", s.errorStatus)
	}
	if s.stall > 0 && s.stallEvery <= s.stall {
		return cfg, fmt.Errorf("--stall-every %v: must be longer than --stall %v", s.stallEvery, s.stall)
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return cfg, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if s.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			return cfg, fmt.Errorf("--tls-cert %s / --tls-key %s: %v", s.tlsCert, s.tlsKey, err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		if s.clientCA != "" {
			pool, err := bench.LoadCertPool("--client-ca", s.clientCA)
			if err != nil {
				return cfg, err
			}
			cfg.TLS.ClientCAs, cfg.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	} else if s.clientCA != "" {
		return cfg, fmt.Errorf("--client-ca needs --tls-cert and --tls-key")
	}
	cfg.Signature = sim.DefaultSignature()
	cfg.Signature.Name = s.signatureName
	if len(s.inputs) > 0 {
		cfg.Signature.Inputs = nil
		for _, in := range s.inputs {
			spec, err := sim.ParseTensorSpec(in)
			if err != nil {
				return cfg, err
			}
			cfg.Signature.Inputs = append(cfg.Signature.Inputs, spec)
		}
	}
	return cfg, nil
}

func simCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("sim", pflag.ContinueOnError)
	var flags simFlags
	flags.register(fs, "127.0.0.1:8501", "127.0.0.1:8500")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof sim [flags]\n\nA simulated model server on loopback, for demos and tests. It speaks TF Serving's\nprotocol (REST /v1/models/NAME:predict, gRPC PredictionService) and the Open\nInference Protocol, KServe V2 (REST /v2/models/NAME/infer with the binary tensor\nextension, gRPC inference.GRPCInferenceService), on the same two ports, with the\nsame latency, stall and error options, and an OpenAI-compatible language model\n(/v1/completions, /v1/chat/completions, streamed as vLLM streams them) on the\nREST port. It is not TensorFlow Serving, Triton or vLLM.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	cfg, err := flags.config()
	if err != nil {
		printError(stderr, "sim", err)
		return exitBadInput
	}
	var traceMu sync.Mutex
	cfg.LLM.OnTrace = func(path string) {
		traceMu.Lock()
		fmt.Fprintf(stdout, "loadprof sim: /stop_profile wrote %s\n", path)
		traceMu.Unlock()
	}
	srv, err := sim.Start(cfg)
	if err != nil {
		printError(stderr, "sim", err)
		return exitBadInput
	}
	fmt.Fprintf(stdout, "loadprof sim: simulated model %q (a simulator, not TensorFlow Serving)\n", cfg.Model)
	if cfg.REST != "" {
		fmt.Fprintf(stdout, "  REST predict: %s\n", srv.PredictURL())
		fmt.Fprintf(stdout, "  V2 REST infer: %s (Open Inference Protocol)\n", srv.V2InferURL())
		fmt.Fprintf(stdout, "  metrics: %s (TF Serving's Prometheus families)\n", srv.MetricsURL())
		fmt.Fprintf(stdout, "  OpenAI-compatible: %s/completions and %s/chat/completions, model %q (TTFT %v, %v between tokens, %d tokens)\n",
			srv.OpenAIBaseURL(), srv.OpenAIBaseURL(), cfg.Model, cfg.LLM.TTFT, cfg.LLM.TokenDelay, cfg.LLM.OutputTokens)
		if cfg.LLM.ProfileDir != "" {
			fmt.Fprintf(stdout, "  vLLM profiler control: POST /start_profile, /stop_profile (traces in %s)\n", cfg.LLM.ProfileDir)
		}
	}
	if cfg.GRPC != "" {
		fmt.Fprintf(stdout, "  gRPC: %s (tensorflow.serving.PredictionService, and V2 inference.GRPCInferenceService)\n", srv.GRPCAddr())
	}
	<-ctx.Done()
	srv.Close()
	return exitOK
}

const demoPayload = `{"instances": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]}` + "\n"

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("demo", pflag.ContinueOnError)
	var flags simFlags
	flags.register(fs, "127.0.0.1:0", "127.0.0.1:0")
	rate := fs.Float64("rate", 200, "requests per second")
	duration := fs.Duration("duration", 5*time.Second, "steady phase")
	warmup := fs.Duration("warmup", time.Second, "warm-up")
	out := fs.String("out", "", "write the result as JSON to this file; - writes it to standard output (the summary then goes to stderr)")
	logdir := fs.String("logdir", "", "keep the profile under this TensorBoard logdir (default: a temporary directory, removed)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof demo [flags]\n\nStarts the simulator on loopback and runs a short profiled load against it.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	cfg, err := flags.config()
	if err == nil {
		err = positiveDuration("--duration", *duration)
	}
	// The demo loads the REST port and profiles through the gRPC one.
	if err == nil && (flags.restAddr == "" || flags.grpcAddr == "") {
		err = errors.New("--rest and --grpc: the demo needs both (it loads REST and profiles through gRPC); leave them out for loopback ports")
	}
	plan := load.Plan{Rate: *rate, WarmupDuration: *warmup, Duration: *duration, MaxInflight: 1000, Grace: 2 * time.Second}
	if err == nil {
		err = plan.Check() // before the simulator starts
	}
	if err != nil {
		printError(stderr, "demo", err)
		return exitBadInput
	}
	srv, err := sim.Start(cfg)
	if err != nil {
		printError(stderr, "demo", err)
		return exitBadInput
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "loadprof-demo")
	if err != nil {
		printError(stderr, "demo", err)
		return exitBadInput
	}
	defer os.RemoveAll(dir)
	dataPath := filepath.Join(dir, "data.json")
	payload := demoPayload
	if len(flags.inputs) > 0 || flags.signatureName != sim.DefaultSignature().Name {
		// A body that fits the signature the demo serves (--input).
		payload = string(cfg.Signature.ExampleBody(2)) + "\n"
	}
	if err := os.WriteFile(dataPath, []byte(payload), 0o644); err != nil {
		printError(stderr, "demo", err)
		return exitBadInput
	}
	if outfile.IsStdout(*out) {
		stdout = stderr // standard output carries the result
	}
	tb := *logdir
	if tb == "" {
		tb = filepath.Join(dir, "tb")
	}
	window := *duration / 2
	fmt.Fprintf(stdout, "loadprof demo: simulated TF Serving model at %s, profiler at %s (a simulator, not TensorFlow Serving)\n", srv.PredictURL(), srv.GRPCAddr())
	fmt.Fprintf(stdout, "  the same as: loadprof run --url %s --data data.json --rate %g --warmup %s --duration %s --profile %s --profile-duration %s --logdir %s --metrics %s\n",
		srv.PredictURL(), *rate, *warmup, *duration, srv.GRPCAddr(), window, tb, srv.MetricsURL())
	fmt.Fprintf(stdout, "  data.json: %s\n", payload)
	runCfg := bench.Config{
		URL: srv.PredictURL(), DataPath: dataPath,
		Plan:    plan,
		Timeout: 10 * time.Second,
		Profile: &bench.ProfileConfig{Addr: srv.GRPCAddr(), Delay: *duration / 4,
			Options: profile.Options{Duration: window, LogDir: tb, Slack: 10 * time.Second}},
		// The sim's metrics page, so that the summary shows what the
		// server measured beside the client (--network-delay widens it).
		Metrics:  &bench.MetricsConfig{URLs: []string{srv.MetricsURL()}},
		Settings: map[string]any{"rate": *rate, "duration": duration.Seconds(), "warmup": warmup.Seconds(), "demo": true},
	}
	runCfg.Progress, runCfg.Warnings = stderr, flagWriter{stderr}
	opts := &runOptions{bench: runCfg, outputs: runOutputs{result: *out}}
	if err := opts.outputs.check(runCfg.Profile); err != nil {
		printError(stderr, "run", err)
		return exitBadInput
	}
	setProcs(0, runCfg)
	code := runAndReport(ctx, opts, stdout, stderr)
	if *logdir == "" {
		fmt.Fprintln(stdout, "\n(the demo's logdir is temporary and removed now; 'loadprof demo --logdir tb' keeps the traces)")
	}
	return code
}
