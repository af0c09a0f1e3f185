package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/spf13/pflag"
)

const runExamples = `
Examples:
  # 200 requests/s for 60s after a 10s warm-up, the body curl would send
  loadprof run --url http://localhost:8501/v1/models/test_model:predict \
      --data data.json --rate 200 --warmup 10s --duration 60s --out result.json

  # 16 requests in flight, 10000 requests, many payloads round-robin
  loadprof run --url http://localhost:8501/v1/models/test_model:predict \
      --data bodies.jsonl --concurrency 16 --requests 10000 --warmup 500

  # the same data.json over gRPC (TF Serving's port 8500), 4 connections
  loadprof run --grpc localhost:8500 --model test_model --data data.json \
      --rate 500 --duration 60s --connections 4

  # profile 4 seconds of the steady load; the trace goes where TensorBoard looks
  loadprof run --url http://gpu-box:8501/v1/models/test_model:predict --data data.json \
      --rate 200 --warmup 10s --duration 60s --profile gpu-box:8500 --logdir ./tb

  # body from stdin, with an auth header (redacted in result.json)
  cat data.json | loadprof run --url https://model.example/v1/models/m:predict \
      --data - --rate 50 -H "Authorization: Bearer $TOKEN"
`

// warmupValue is --warmup: a duration ("10s") or a request count ("500").
type warmupValue struct {
	d time.Duration
	n int64
	s string
}

func (w *warmupValue) String() string { return w.s }
func (w *warmupValue) Type() string   { return "duration|count" }
func (w *warmupValue) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("must not be negative")
		}
		*w = warmupValue{n: n, s: s}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration like 10s or a request count like 500")
	}
	*w = warmupValue{d: d, s: s}
	return nil
}

func runCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	url := fs.String("url", "", "REST endpoint, e.g. http://HOST:8501/v1/models/NAME:predict")
	grpcAddr := fs.String("grpc", "", "gRPC target HOST:PORT of a TF Serving PredictionService (port 8500), instead of --url")
	model := fs.String("model", "", "with --grpc: model name")
	signature := fs.String("signature", "serving_default", "with --grpc: signature for payloads that name none")
	modelVersion := fs.Int64("model-version", 0, "with --grpc: model version (default: the latest)")
	modelLabel := fs.String("model-label", "", "with --grpc: model version label, instead of --model-version")
	connections := fs.Int("connections", 1, "with --grpc: HTTP/2 connections to spread requests over")
	tensorContent := fs.Bool("tensor-content", false, "with --grpc: send numeric tensors as tensor_content bytes instead of typed fields")
	useTLS := fs.Bool("tls", false, "with --grpc: use TLS (https:// URLs always do)")
	data := fs.String("data", "", "payload: a TF Serving JSON body, a .jsonl file (one body per line), a directory of them, or - for stdin")
	maxPayload := fs.Int64("max-payload", payloads.DefaultMaxBytes, "largest payload file read, in bytes")
	headers := fs.StringArrayP("header", "H", nil, "extra header \"Key: value\" (repeatable)")
	rateSpec := fs.String("rate", "", "open loop: requests per second; latency counts from each request's intended send time. FROM:TO:STEP sweeps (50:500:50)")
	concSpec := fs.String("concurrency", "", "closed loop: requests in flight. FROM:TO:STEP or FROM:TO:xFACTOR sweeps (1:64:x2)")
	maxErrors := fs.String("max-errors", "", "exit 1 when the steady phase has more errors than this: a count (10) or a rate (0.5%), for CI")
	sloSpec := fs.String("slo", "", "sweep: stop at the first step that breaks this objective, e.g. p99<50ms,errors<0.1%")
	search := fs.String("search", "", "sweep: \"binary\" narrows the highest passing level between the last passing and the first broken step")
	tolerance := fs.Float64("search-tolerance", 0.05, "sweep: relative width at which the binary search stops")
	profileSteps := fs.String("profile-steps", "", "sweep: profile at steps all, first, last, max (the highest passing, run again) or N,M (1-based)")
	repeats := fs.Int("step-repeats", 1, "sweep: tries of an unstable step beyond the first")
	stability := fs.Float64("step-stability", 0.2, "sweep: a step whose halves differ by more than this in throughput or p99 is unstable")
	duration := fs.Duration("duration", 0, "length of the steady phase (default 10s unless --requests is given)")
	requests := fs.Int64("requests", 0, "number of steady requests")
	warmup := &warmupValue{s: "0"}
	fs.Var(warmup, "warmup", "warm-up before the steady phase, a duration (10s) or a request count (500); not in the statistics")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	maxInflight := fs.Int("max-inflight", 1000, "open loop: most requests in flight (and connections) at once")
	maxResponse := fs.Int("max-response", 64<<20, "largest response accepted, in bytes (REST: the body; gRPC: the response message); larger ones count as response_too_large")
	grace := fs.Duration("grace", 2*time.Second, "after Ctrl-C, how long to wait for requests in flight")
	out := fs.String("out", "", "write the result as JSON to this file; - writes it to standard output (the summary then goes to stderr)")
	hgrm := fs.String("hgrm", "", "write the steady latency distribution as HdrHistogram .hgrm text to this file")
	htmlOut := fs.String("html", "", "write a self-contained HTML report of the run to this file")
	hlog := fs.String("hlog", "", "stream an HdrHistogram interval log to this file as the run goes (one histogram per second, values in microseconds, warm-up tagged \"warmup\")")
	quiet := fs.BoolP("quiet", "q", false, "no progress on stderr (a live line on a terminal, a line every 10s otherwise)")
	ca := fs.String("ca", "", "PEM file of the CA that signed the server certificate (https)")
	cert := fs.String("cert", "", "client certificate PEM for mutual TLS")
	key := fs.String("key", "", "client key PEM for mutual TLS")
	insecure := fs.Bool("insecure-skip-verify", false, "do not verify the server certificate")
	prof := addProfileFlags(fs)
	profileAddr := fs.String("profile", "", "open a profile window through the ProfilerService at HOST:PORT (TF Serving's gRPC port, 8500) during the steady load")
	profileDelay := fs.Duration("profile-delay", 0, "open the window this long after the steady phase starts")
	profileRequired := fs.Bool("profile-required", false, "exit 3 when the capture fails (by default the load results still count)")
	requestEvents := fs.StringSlice("profile-request-events", profile.DefaultRequestEvents, "names of the server's per-request trace events, in order of preference (the first the trace has is used): they place loadprof's client plane on the server's timeline and split client latency into time inside and outside the server")
	cpus := fs.Int("cpus", 0, "OS threads running Go code (GOMAXPROCS); 0 keeps all cores. The epoll engine runs at most one event loop fewer (one per 32 connections or 25,000 req/s): --cpus 1 or 2 matches wrk -t1")
	engine := fs.String("rest-engine", "auto", "how REST requests are driven: epoll (event loops like wrk; Linux, http://), goroutines (one per connection; also https), or auto (epoll where it can)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of loadprof itself to this file")
	_ = fs.MarkHidden("cpuprofile")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof run (--url URL | --grpc HOST:PORT --model NAME) --data FILE (--rate R | --concurrency N) [flags]\n\nFlags:\n%s%s", fs.FlagUsages(), runExamples)
	}
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	profOpts, err := prof.options()
	if err == nil {
		err = firstError(
			nonNegativeDuration("--duration", *duration),
			atLeast("--requests", *requests, 0),
			positiveDuration("--timeout", *timeout),
			positiveDuration("--grace", *grace),
			atLeast("--max-inflight", *maxInflight, 1),
			atLeast("--max-response", *maxResponse, 1),
			atLeast("--max-payload", *maxPayload, 1),
			atLeast("--connections", *connections, 1),
			atLeast("--model-version", *modelVersion, 0),
			atLeast("--cpus", *cpus, 0),
			nonNegativeDuration("--profile-delay", *profileDelay),
			within("--search-tolerance", *tolerance, 0.001, 0.999),
			positiveFinite("--step-stability", *stability),
			atLeast("--step-repeats", *repeats, 0),
		)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadprof run: %v\n", err)
		return exitBadInput
	}
	if (*url == "") == (*grpcAddr == "") {
		fmt.Fprintln(stderr, "loadprof run: give one target, --url (REST) or --grpc HOST:PORT (see 'loadprof run --help')")
		return exitBadInput
	}
	if *data == "" {
		fmt.Fprintln(stderr, "loadprof run: --data is required (see 'loadprof run --help')")
		return exitBadInput
	}
	var hs []load.Header
	for _, h := range *headers {
		parsed, err := load.ParseHeader(h)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof run: -H: %v\n", err)
			return exitBadInput
		}
		hs = append(hs, parsed)
	}
	restEngine, err := load.ParseEngine(*engine)
	if err != nil {
		fmt.Fprintf(stderr, "loadprof run: %v\n", err)
		return exitBadInput
	}
	if *rateSpec != "" && *concSpec != "" {
		fmt.Fprintln(stderr, "loadprof run: --rate and --concurrency exclude each other: choose an open or a closed loop")
		return exitBadInput
	}
	var rate float64
	var concurrency int
	var sweep *bench.Steps
	for _, f := range []struct {
		name, spec string
		closed     bool
	}{{"--rate", *rateSpec, false}, {"--concurrency", *concSpec, true}} {
		if f.spec == "" {
			continue
		}
		if strings.Contains(f.spec, ":") {
			steps, err := bench.ParseSteps(f.name, f.spec)
			if err != nil {
				fmt.Fprintf(stderr, "loadprof run: %v\n", err)
				return exitBadInput
			}
			sweep = &steps
			if f.closed {
				concurrency = 1 // replaced per step
			} else {
				rate = 1
			}
			continue
		}
		v, err := strconv.ParseFloat(f.spec, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) || (f.closed && v != float64(int(v))) {
			fmt.Fprintf(stderr, "loadprof run: %s %q: want a positive number%s, or a FROM:TO:STEP sweep\n", f.name, f.spec, map[bool]string{true: " of requests"}[f.closed])
			return exitBadInput
		}
		if f.closed {
			concurrency = int(v)
		} else {
			rate = v
		}
	}
	if (*sloSpec != "" || *search != "" || *profileSteps != "") && sweep == nil {
		fmt.Fprintln(stderr, "loadprof run: --slo, --search and --profile-steps go with a sweep (--rate FROM:TO:STEP or --concurrency FROM:TO:STEP)")
		return exitBadInput
	}
	if *search != "" && *search != "binary" {
		fmt.Fprintf(stderr, "loadprof run: --search %q: the only search is binary\n", *search)
		return exitBadInput
	}
	if *duration == 0 && *requests == 0 {
		*duration = 10 * time.Second
	}
	cfg := bench.Config{
		URL: *url, Headers: hs, DataPath: *data, Stdin: stdin, MaxPayloadBytes: *maxPayload,
		GRPC: bench.GRPCTarget{
			Addr: *grpcAddr, Model: *model, Signature: *signature, Version: *modelVersion, Label: *modelLabel,
			Connections: *connections, TensorContent: *tensorContent,
		},
		Plan: load.Plan{
			Rate: rate, Concurrency: concurrency,
			WarmupDuration: warmup.d, WarmupRequests: warmup.n,
			Duration: *duration, Requests: *requests,
			MaxInflight: *maxInflight, Grace: *grace,
		},
		Timeout: *timeout, MaxResponseBytes: *maxResponse, RESTEngine: restEngine,
		TLS:     bench.TLSFiles{Enabled: *useTLS, CA: *ca, Cert: *cert, Key: *key, InsecureSkipVerify: *insecure},
		OutPath: *out, HGRMPath: *hgrm, HlogPath: *hlog,
		Settings: settings(fs, hs),
		Warnings: stderr,
	}
	if *profileAddr != "" {
		addr, err := profile.NormalizeAddr(*profileAddr)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof run: --profile %v\n", err)
			return exitBadInput
		}
		cfg.Profile = &bench.ProfileConfig{Addr: addr, Delay: *profileDelay, Required: *profileRequired, Options: profOpts, RequestEvents: *requestEvents}
	}
	if !*quiet {
		// A line rewritten every second on a terminal, a line every 10 s in
		// a log (bench decides which by what stderr is).
		cfg.Progress = stderr
	}
	setProcs(*cpus, cfg)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof run: --cpuprofile: %v\n", err)
			return exitBadInput
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "loadprof run: --cpuprofile: %v\n", err)
			return exitBadInput
		}
		defer pprof.StopCPUProfile()
	}
	if err := bench.CheckOutputs(cfg, outfile.Output{Flag: "--html", Path: *htmlOut}); err != nil {
		fmt.Fprintf(stderr, "loadprof run: %v\n", err)
		return exitBadInput
	}
	if err := checkOpenFileLimit(connectionsNeeded(cfg, sweep, *connections, *maxInflight)); err != nil {
		fmt.Fprintf(stderr, "loadprof run: %v\n", err)
		return exitBadInput
	}
	if bench.UsesStdout(cfg, *htmlOut) {
		stdout = stderr // standard output carries the result; the summary goes beside it
	}
	var errorBudget *report.Limit
	if *maxErrors != "" {
		l, err := report.ParseErrorLimit(*maxErrors)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof run: --max-errors %v\n", err)
			return exitBadInput
		}
		errorBudget = &l
	}
	if sweep != nil {
		if errorBudget != nil {
			fmt.Fprintln(stderr, "loadprof run: --max-errors is for one run; a sweep's error limit goes in --slo (errors<0.1%)")
			return exitBadInput
		}
		return sweepAndReport(ctx, cfg, sweepFlags{steps: *sweep, closed: concurrency > 0, slo: *sloSpec, binary: *search == "binary",
			tolerance: *tolerance, profileSteps: *profileSteps, repeats: *repeats, stability: *stability, html: *htmlOut}, stdout, stderr)
	}
	code, res := runAndReport(ctx, cfg, stdout, stderr)
	if errorBudget != nil && res != nil && code == exitOK {
		if over, what := report.ErrorsOver(res, *errorBudget); over {
			fmt.Fprintf(stderr, "loadprof run: --max-errors: %s\n", what)
			code = exitRegression
		}
	}
	if *htmlOut != "" && res != nil {
		name := *out
		if name == "" || name == outfile.Stdout {
			name = "run"
		}
		err := writeHTML(*htmlOut, []*report.Result{res}, []string{name})
		if err != nil {
			printError(stderr, "run", err)
			if code == exitOK || code == exitInterrupted || code == exitTerminated {
				code = exitCode(err, 0)
			}
		}
		reportOutput(stdout, "HTML report", *htmlOut, err)
	}
	return code
}

// connectionsNeeded is the most connections the run (every step of a
// sweep) may hold open at once, and the flag that sets it.
func connectionsNeeded(cfg bench.Config, sweep *bench.Steps, grpcConns, maxInflight int) (int, string) {
	switch {
	case cfg.GRPC.Addr != "":
		return grpcConns, "--connections"
	case cfg.Plan.Concurrency > 0 && sweep != nil:
		return int(sweep.Values[len(sweep.Values)-1]), "--concurrency"
	case cfg.Plan.Concurrency > 0:
		return cfg.Plan.Concurrency, "--concurrency"
	}
	return maxInflight, "--max-inflight"
}

// runAndReport runs cfg, prints the summary and maps the outcome to an exit
// code. Results already measured are printed and written in every case.
func runAndReport(ctx context.Context, cfg bench.Config, stdout, stderr io.Writer) (int, *report.Result) {
	res, err := bench.Run(ctx, cfg)
	if res != nil {
		report.WriteSummary(stdout, res)
		if cfg.OutPath != "" || cfg.HGRMPath != "" || cfg.HlogPath != "" {
			fmt.Fprintln(stdout)
		}
		reportOutput(stdout, "result", cfg.OutPath, err)
		reportOutput(stdout, "latency distribution", cfg.HGRMPath, err)
		reportOutput(stdout, "interval log", cfg.HlogPath, err)
	}
	if err != nil {
		printError(stderr, "run", err)
	} else if res != nil && res.Profile != nil && res.Profile.Error != "" {
		fmt.Fprintf(stderr, "loadprof run: warning: %s (load results are complete)\n", res.Profile.Error)
	}
	return exitCode(err, interruptCode(ctx)), res
}

// sweepFlags are the flags of a sweep beyond the run's own.
type sweepFlags struct {
	steps        bench.Steps
	closed       bool // --concurrency steps
	slo          string
	binary       bool
	tolerance    float64
	profileSteps string
	repeats      int
	stability    float64
	html         string
}

// sweepAndReport runs a sweep and prints its table; result.json holds
// every step, --html plots them. It exits 1 when an SLO was given and no
// step met it.
func sweepAndReport(ctx context.Context, cfg bench.Config, f sweepFlags, stdout, stderr io.Writer) int {
	slo := report.SLO{ErrPct: -1}
	if f.slo != "" {
		var err error
		if slo, err = report.ParseSLO(f.slo); err != nil {
			fmt.Fprintf(stderr, "loadprof run: %v\n", err)
			return exitBadInput
		}
		for name, limitMs := range slo.Latency {
			// A timed-out request counts as --timeout in the latency: a limit
			// at or above it could never be broken by timeouts.
			if timeoutMs := float64(cfg.Timeout) / float64(time.Millisecond); limitMs >= timeoutMs {
				fmt.Fprintf(stderr, "loadprof run: --slo %s<%gms is not below --timeout %v: timed-out requests count as %v and could never break it; raise --timeout\n", name, limitMs, cfg.Timeout, cfg.Timeout)
				return exitBadInput
			}
		}
	}
	if f.profileSteps != "" && cfg.Profile == nil {
		fmt.Fprintln(stderr, "loadprof run: --profile-steps needs --profile HOST:PORT")
		return exitBadInput
	}
	for flag, path := range map[string]string{"--hgrm": cfg.HGRMPath, "--hlog": cfg.HlogPath} {
		if path != "" {
			fmt.Fprintf(stderr, "loadprof run: %s is one run's latency distribution; a sweep keeps every step's in --out (steps[].result), and --html plots them\n", flag)
			return exitBadInput
		}
	}
	sc := bench.SweepConfig{Base: cfg, Closed: f.closed, Steps: f.steps, SLO: slo, Binary: f.binary, Tolerance: f.tolerance,
		ProfileSteps: f.profileSteps, Repeats: f.repeats, Stability: f.stability, Progress: cfg.Progress}
	if sc.Progress == nil {
		sc.Progress = io.Discard
	}
	sc.Base.Progress = nil
	res, err := bench.RunSweep(ctx, sc)
	code := exitCode(err, interruptCode(ctx))
	if res == nil {
		if err != nil {
			printError(stderr, "run", err)
		}
		return code
	}
	res.SLO, res.Config = f.slo, cfg.Settings
	report.WriteSweepSummary(stdout, res)
	if err != nil {
		printError(stderr, "run", err)
	}
	if code == exitOK && f.slo != "" && res.MaxPassing == nil {
		fmt.Fprintf(stderr, "loadprof run: no step met the SLO (%s)\n", f.slo)
		code = exitRegression
	}
	var werrs []error
	if cfg.OutPath != "" {
		werr := flagged(res.WriteJSON(cfg.OutPath), "--out")
		fmt.Fprintln(stdout)
		reportOutput(stdout, "result", cfg.OutPath, werr)
		werrs = append(werrs, werr)
	}
	if f.html != "" {
		var buf bytes.Buffer
		werr := report.WriteSweepHTML(&buf, res)
		if werr == nil {
			werr = bench.WriteOutput("--html", f.html, buf.Bytes())
		}
		reportOutput(stdout, "HTML report", f.html, werr)
		werrs = append(werrs, werr)
	}
	for _, werr := range werrs {
		if werr != nil {
			printError(stderr, "run", werr)
			code = exitWrite
		}
	}
	return code
}

// settings records every flag that shaped the run for result.json, with
// header values of credentials redacted.
func settings(fs *pflag.FlagSet, headers []load.Header) map[string]any {
	m := map[string]any{}
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Name {
		case "header":
			m[f.Name] = bench.RedactHeaders(headers)
		case "url":
			m[f.Name] = bench.RedactURL(f.Value.String())
		case "quiet":
		default:
			m[f.Name] = settingValue(f)
		}
	})
	return m
}

// settingValue is a flag's value as result.json keeps it: numbers as
// numbers, durations as seconds (result.json says so in units), booleans,
// lists as lists. --warmup is a number of seconds or, for a request
// count, {"requests": N}; --rate and --concurrency are numbers, or the
// sweep's FROM:TO:STEP as written.
func settingValue(f *pflag.Flag) any {
	v, s := f.Value, f.Value.String()
	switch v.Type() {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "float32", "float64":
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			return n
		}
	case "bool":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case "duration":
		if d, err := time.ParseDuration(s); err == nil {
			return d.Seconds()
		}
	case "duration|count":
		if w, ok := v.(*warmupValue); ok {
			if w.n > 0 {
				return map[string]any{"requests": w.n}
			}
			return w.d.Seconds()
		}
	case "string":
		if f.Name != "rate" && f.Name != "concurrency" {
			return s
		}
		if n, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
			return n
		}
		return s
	}
	if sv, ok := v.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return s
}

// setProcs sets GOMAXPROCS for a run: cpus (--cpus) when set, raised for
// a target the epoll engine may drive to what that engine wants
// (load.EventLoopProcs), which the load package leaves to the program.
func setProcs(cpus int, cfg bench.Config) {
	procs := runtime.GOMAXPROCS(0)
	if cpus > 0 {
		procs = cpus
	}
	if cfg.GRPC.Addr == "" && cfg.RESTEngine != load.EngineGoroutines && strings.HasPrefix(strings.ToLower(cfg.URL), "http://") {
		procs = load.EventLoopProcs(procs)
	}
	if procs != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(procs)
	}
}
