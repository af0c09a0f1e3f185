package main

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/loadprof/loadprof/kube"
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

  # the same data.json to Triton, KServe or MLServer over V2 gRPC (Triton: 8001)
  loadprof run --grpc localhost:8001 --protocol v2 --model test_model --data data.json \
      --rate 500 --duration 60s

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

// runOptions is a `loadprof run` as its flags asked for it, every flag
// read and checked: nothing has been opened or sent yet.
type runOptions struct {
	bench       bench.Config
	outputs     runOutputs
	sweep       *sweepOptions // nil for one run
	errorBudget *report.Limit // --max-errors; nil for none
	cpus        int           // GOMAXPROCS; 0 keeps the default
	cpuProfile  string
	maxConns    int             // the most connections the run may hold open at once
	connsFlag   string          // the flag that sets maxConns
	cluster     *clusterOptions // --workers: this process coordinates; nil for a run of its own
}

// sweepOptions are the flags of a sweep beyond the run's own.
type sweepOptions struct {
	steps        bench.Steps
	closed       bool // --concurrency steps
	slo          report.SLO
	sloSpec      string // --slo as written, for result.json
	binary       bool
	tolerance    float64
	profileSteps string
	repeats      int
	stability    float64
	notes        []string // printed under the sweep's table
}

// runFlags are the flags of `loadprof run`, bound to their flag set.
type runFlags struct {
	url, grpcAddr, model, signature, modelLabel, protocol   *string
	modelVersion, maxPayload, requests                      *int64
	connections, maxInflight, maxResponse, repeats, cpus    *int
	tensorContent, useTLS, quiet, insecure, profileRequired *bool
	data, rateSpec, concSpec, maxErrors, sloSpec, search    *string
	profileSteps, out, hgrm, htmlOut, hlog, ca, cert, key   *string
	profileAddr, engine, cpuProfile                         *string
	profileHTTP                                             *string
	headers, requestEvents, metrics, metricsHeaders         *[]string
	tolerance, stability                                    *float64
	duration, timeout, grace, profileDelay, metricsInterval *time.Duration
	metricsTimeout, sendSlack                               *time.Duration
	warmup                                                  *warmupValue
	prof                                                    *profileFlags
	v2Binary                                                *bool
	cluster                                                 *clusterFlags
}

func newRunFlags() (*pflag.FlagSet, *runFlags) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	f := &runFlags{warmup: &warmupValue{s: "0"}}
	f.url = fs.String("url", "", "REST endpoint: TF Serving's http://HOST:8501/v1/models/NAME:predict, or V2's (Open Inference Protocol) http://HOST:8000/v2/models/NAME[/versions/V]/infer")
	f.grpcAddr = fs.String("grpc", "", "gRPC target HOST:PORT of a TF Serving PredictionService (port 8500), or with --protocol v2 of a V2 GRPCInferenceService (Triton's 8001), instead of --url")
	f.protocol = fs.String("protocol", bench.ProtocolTFServing, "with --grpc: the API the server speaks, tf (TF Serving's PredictionService) or v2 (the Open Inference Protocol, KServe V2: Triton, KServe, MLServer, OpenVINO Model Server); over REST the URL says it")
	f.model = fs.String("model", "", "with --grpc: model name")
	f.signature = fs.String("signature", "serving_default", "with --grpc: signature for payloads that name none")
	f.modelVersion = fs.Int64("model-version", 0, "with --grpc: model version (default: the latest)")
	f.modelLabel = fs.String("model-label", "", "with --grpc: model version label, instead of --model-version (TF Serving only)")
	f.connections = fs.Int("connections", 1, "with --grpc: HTTP/2 connections to spread requests over")
	f.tensorContent = fs.Bool("tensor-content", false, "with --grpc: send tensors as bytes instead of typed fields (TF Serving: numeric tensors in tensor_content; v2: every input in raw_input_contents, which FP16 needs)")
	f.useTLS = fs.Bool("tls", false, "with --grpc: use TLS (https:// URLs always do)")
	f.data = fs.String("data", "", "payload: a TF Serving JSON body (or a V2 infer body, for a V2 target), a .jsonl file (one body per line), a directory of them, or - for stdin")
	f.maxPayload = fs.Int64("max-payload", payloads.DefaultMaxBytes, "largest payload file read, in bytes")
	f.headers = fs.StringArrayP("header", "H", nil, "extra header \"Key: value\" (repeatable; also $LOADPROF_HEADERS, one a line)")
	f.rateSpec = fs.String("rate", "", "open loop: requests per second; latency counts from each request's intended send time. FROM:TO:STEP sweeps (50:500:50)")
	f.concSpec = fs.String("concurrency", "", "closed loop: requests in flight. FROM:TO:STEP or FROM:TO:xFACTOR sweeps (1:64:x2)")
	f.maxErrors = fs.String("max-errors", "", "exit 1 when the steady phase has more errors than this: a count (10) or a rate (0.5%), for CI")
	f.sloSpec = fs.String("slo", "", "sweep: stop at the first step that breaks this objective, e.g. p99<50ms,errors<0.1%; OpenAI-compatible targets also take ttft_, itl_, tpot_ and e2e_ terms (ttft_p99<500ms,itl_p99<50ms,tpot_mean<20ms,e2e_p99<5s), which also give the goodput, of one run too: the requests whose own TTFT, largest gap (mean gap for itl_mean), TPOT and e2e were under them")
	f.search = fs.String("search", "", "sweep: \"binary\" narrows the highest passing level between the last passing and the first broken step")
	f.tolerance = fs.Float64("search-tolerance", 0.05, "sweep: relative width at which the binary search stops")
	f.profileSteps = fs.String("profile-steps", "", "sweep: profile at steps all, first, last, max (the highest passing, run again) or N,M (1-based)")
	f.repeats = fs.Int("step-repeats", 1, "sweep: tries of an unstable step beyond the first")
	f.stability = fs.Float64("step-stability", 0.2, "sweep: a step whose halves differ by more than this in throughput or p99 is unstable")
	f.duration = fs.Duration("duration", 0, "length of the steady phase (default 10s unless --requests is given)")
	f.requests = fs.Int64("requests", 0, "number of steady requests")
	fs.Var(f.warmup, "warmup", "warm-up before the steady phase, a duration (10s) or a request count (500); not in the statistics")
	f.timeout = fs.Duration("timeout", 10*time.Second, "per-request timeout")
	f.maxInflight = fs.Int("max-inflight", 1000, "open loop: most requests in flight (and connections) at once")
	f.maxResponse = fs.Int("max-response", 64<<20, "largest response accepted, in bytes (REST: the body; gRPC: the response message); larger ones count as response_too_large")
	f.grace = fs.Duration("grace", 2*time.Second, "after Ctrl-C, how long to wait for requests in flight")
	f.sendSlack = fs.Duration("send-slack", load.DefaultSendSlack, "open loop, REST epoll engine: how late a request may leave so that one wake-up sends every request due by then; more slack, less CPU per request and more send lag")
	f.out = fs.String("out", "", "write the result as JSON to this file; - writes it to standard output (the summary then goes to stderr)")
	f.hgrm = fs.String("hgrm", "", "write the steady latency distribution as HdrHistogram .hgrm text to this file")
	f.htmlOut = fs.String("html", "", "write a self-contained HTML report of the run to this file")
	f.hlog = fs.String("hlog", "", "stream an HdrHistogram interval log to this file as the run goes (one histogram per second, values in microseconds, warm-up tagged \"warmup\"; with --workers, written once their results are in)")
	f.quiet = fs.BoolP("quiet", "q", false, "no progress on stderr (a live line on a terminal, a line every 10s otherwise)")
	f.ca = fs.String("ca", "", "PEM file of the CA that signed the server certificate (https)")
	f.cert = fs.String("cert", "", "client certificate PEM for mutual TLS")
	f.key = fs.String("key", "", "client key PEM for mutual TLS")
	f.insecure = fs.Bool("insecure-skip-verify", false, "do not verify the server certificate")
	f.prof = addProfileFlags(fs)
	f.profileAddr = fs.String("profile", "", "open a profile window through the ProfilerService at HOST:PORT (TF Serving's gRPC port, 8500) during the steady load")
	f.profileHTTP = fs.String("profile-http", "", "open the profile window through vLLM's HTTP profiler control instead (POST /start_profile and /stop_profile; the server writes the trace to its own torch_profiler_dir): alone, on the --url target's HOST:PORT; --profile-http=http://HOST:PORT for another")
	fs.Lookup("profile-http").NoOptDefVal = profileHTTPTarget
	f.profileDelay = fs.Duration("profile-delay", 0, "open the window this long after the steady phase starts")
	f.profileRequired = fs.Bool("profile-required", false, "exit 3 when the capture fails (by default the load results still count)")
	f.requestEvents = fs.StringSlice("profile-request-events", profile.DefaultRequestEvents, "names of the server's per-request trace events, in order of preference (the first the trace has is used): they place loadprof's client plane on the server's timeline and split client latency into time inside and outside the server")
	f.metrics = fs.StringArray("metrics", nil, "scrape this Prometheus endpoint of the server through the run (repeatable): TF Serving's http://HOST:8501/monitoring/prometheus/metrics, Triton's :8002/metrics, a DCGM exporter; the summary puts the server's count and latency beside the client's")
	f.metricsHeaders = fs.StringArray("metrics-header", nil, "with --metrics: header \"Key: value\" sent with every scrape (repeatable), e.g. the metrics endpoint's credentials; -H headers are never sent there")
	f.metricsTimeout = fs.Duration("metrics-timeout", 2*time.Second, "with --metrics: how long one scrape may take (a failed one is a warning)")
	f.metricsInterval = fs.Duration("metrics-interval", time.Second, "with --metrics: time between scrapes, at least 100ms (the steady phase's and the profile window's edges are scraped too)")
	f.cpus = fs.Int("cpus", 0, "OS threads running Go code (GOMAXPROCS); 0 keeps all cores. The epoll engine runs at most one event loop fewer (one per 32 connections or 25,000 req/s): --cpus 1 or 2 matches wrk -t1")
	f.v2Binary = fs.Bool("v2-binary", false, "with a V2 --url (/v2/models/NAME/infer): send tensors in the binary tensor extension instead of JSON data")
	f.engine = fs.String("rest-engine", "auto", "how REST requests are driven: epoll (event loops like wrk; Linux, http://), goroutines (one per connection; also https), or auto (epoll where it can)")
	f.cluster = addClusterFlags(fs)
	f.cpuProfile = fs.String("cpuprofile", "", "write a Go CPU profile of loadprof itself to this file")
	_ = fs.MarkHidden("cpuprofile")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof run (--url URL | --grpc HOST:PORT [--protocol v2] --model NAME) --data FILE (--rate R | --concurrency N) [flags]\n\nFlags:\n%s%s", fs.FlagUsages(), runExamples)
	}
	return fs, f
}

func runCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, flags := newRunFlags()
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	opts, err := flags.options(fs, stdin, stderr)
	if err != nil {
		printError(stderr, "run", err)
		return exitBadInput
	}
	stopProcess, err := opts.setUpProcess()
	if err != nil {
		printError(stderr, "run", err)
		return exitBadInput
	}
	defer stopProcess()
	if err := opts.checkBeforeLoad(); err != nil {
		printError(stderr, "run", err)
		return exitBadInput
	}
	if opts.outputs.usesStdout() {
		stdout = stderr // standard output carries the result; the summary goes beside it
	}
	var code int
	if opts.sweep != nil {
		code = sweepAndReport(ctx, opts, stdout, stderr)
	} else {
		code = runAndReport(ctx, opts, stdout, stderr)
	}
	if opts.cluster != nil {
		code = opts.cluster.serveResults(ctx, code, stderr)
	}
	return code
}

// options reads the flags into a runOptions, checking each: the first
// problem is the error.
func (f *runFlags) options(fs *pflag.FlagSet, stdin io.Reader, stderr io.Writer) (*runOptions, error) {
	profOpts, err := f.prof.options()
	if err == nil {
		err = f.checkRanges()
	}
	if err != nil {
		return nil, err
	}
	if err := f.checkTargetAndData(fs); err != nil {
		return nil, err
	}
	var hs []load.Header
	for _, h := range *f.headers {
		parsed, err := load.ParseHeader(h)
		if err != nil {
			return nil, fmt.Errorf("-H: %w", err)
		}
		hs = append(hs, parsed)
	}
	// Headers from the environment (a Kubernetes Secret's credentials,
	// kept out of the Job's arguments): one "Key: value" a line.
	for i, line := range strings.Split(os.Getenv(kube.HeadersEnv), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		parsed, err := load.ParseHeader(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", kube.HeadersEnv, i+1, err)
		}
		hs = append(hs, parsed)
	}
	restEngine, err := load.ParseEngine(*f.engine)
	if err != nil {
		return nil, err
	}
	rate, concurrency, sweep, err := f.loadLevel()
	if err != nil {
		return nil, err
	}
	if *f.duration == 0 && *f.requests == 0 {
		*f.duration = 10 * time.Second
	}
	opts := &runOptions{
		bench: bench.Config{
			URL: *f.url, Headers: hs, DataPath: *f.data, Stdin: stdin, MaxPayloadBytes: *f.maxPayload,
			GRPC: bench.GRPCTarget{
				Addr: *f.grpcAddr, Protocol: *f.protocol, Model: *f.model, Signature: *f.signature, Version: *f.modelVersion, Label: *f.modelLabel,
				Connections: *f.connections, TensorContent: *f.tensorContent,
			},
			Plan: load.Plan{
				Rate: rate, Concurrency: concurrency,
				WarmupDuration: f.warmup.d, WarmupRequests: f.warmup.n,
				Duration: *f.duration, Requests: *f.requests,
				MaxInflight: *f.maxInflight, Grace: *f.grace, SendSlack: *f.sendSlack,
			},
			Timeout: *f.timeout, MaxResponseBytes: *f.maxResponse, RESTEngine: restEngine,
			V2Binary: *f.v2Binary,
			TLS:      bench.TLSFiles{Enabled: *f.useTLS, CA: *f.ca, Cert: *f.cert, Key: *f.key, InsecureSkipVerify: *f.insecure},
			Settings: settings(fs, hs),
			Warnings: flagWriter{stderr},
		},
		outputs:    runOutputs{result: *f.out, hgrm: *f.hgrm, hlog: *f.hlog, html: *f.htmlOut},
		cpus:       *f.cpus,
		cpuProfile: *f.cpuProfile,
	}
	if *f.profileAddr != "" {
		addr, err := profile.NormalizeAddr(*f.profileAddr)
		if err != nil {
			return nil, fmt.Errorf("--profile %w", err)
		}
		opts.bench.Profile = &bench.ProfileConfig{Addr: addr, Delay: *f.profileDelay, Required: *f.profileRequired, Options: profOpts, RequestEvents: *f.requestEvents}
	}
	if fs.Changed("profile-http") {
		base, err := profileHTTPBase(*f.profileHTTP, *f.profileAddr, *f.url)
		if err != nil {
			return nil, err
		}
		profOpts.LogDir = "" // the trace stays on the server
		opts.bench.Profile = &bench.ProfileConfig{HTTP: base, Delay: *f.profileDelay, Required: *f.profileRequired, Options: profOpts}
	}
	for _, name := range []string{"metrics-interval", "metrics-timeout", "metrics-header"} {
		if len(*f.metrics) == 0 && fs.Changed(name) {
			value := " " + fs.Lookup(name).Value.String()
			if name == "metrics-header" {
				value = "" // may be a credential
			}
			return nil, fmt.Errorf("--%s%s: needs --metrics URL (it sets how that endpoint is scraped)", name, value)
		}
	}
	if len(*f.metrics) > 0 {
		// Each scrape makes the server render, and loadprof parse, the
		// whole page (15-20 ms of CPU for TF Serving's): a few a second
		// at most, and never so often that it becomes load of its own.
		if d := *f.metricsInterval; d >= 0 && d < minMetricsInterval {
			return nil, fmt.Errorf("--metrics-interval %v: must be at least %v: each scrape reads and parses the server's whole metrics page", d, minMetricsInterval)
		}
		if *f.metricsTimeout <= 0 {
			return nil, fmt.Errorf("--metrics-timeout %v: must be positive", *f.metricsTimeout)
		}
		mhs, err := parseHeaders("--metrics-header", *f.metricsHeaders)
		if err != nil {
			return nil, err
		}
		// The metrics endpoint's credentials from a Kubernetes Secret.
		envHeaders, err := parseHeaders(kube.MetricsHeadersEnv, nonBlankLines(os.Getenv(kube.MetricsHeadersEnv)))
		if err != nil {
			return nil, err
		}
		mhs = append(mhs, envHeaders...)
		opts.bench.Metrics = &bench.MetricsConfig{URLs: *f.metrics, Interval: *f.metricsInterval, Timeout: *f.metricsTimeout, Model: *f.model, Headers: mhs}
	}
	if !*f.quiet {
		// A line rewritten every second on a terminal, a line every 10 s in
		// a log (bench decides which by what stderr is).
		opts.bench.Progress = stderr
	}
	opts.maxConns, opts.connsFlag = connectionsNeeded(opts.bench, sweep)
	if *f.maxErrors != "" {
		l, err := report.ParseErrorLimit(*f.maxErrors)
		if err != nil {
			return nil, fmt.Errorf("--max-errors %w", err)
		}
		opts.errorBudget = &l
	}
	if sweep != nil {
		if opts.sweep, err = f.sweepOptions(*sweep, concurrency > 0, opts); err != nil {
			return nil, err
		}
		if opts.sweep.slo.HasLLM() {
			if err := llmTermsUnderTimeout(opts.sweep.slo, opts.bench.Timeout); err != nil {
				return nil, err
			}
			opts.bench.SLO, opts.bench.SLOSpec = &opts.sweep.slo, opts.sweep.sloSpec
		}
	} else if *f.sloSpec != "" {
		// One run: the LLM terms give its goodput; the others judge sweep
		// steps only.
		slo, err := report.ParseSLO(*f.sloSpec)
		if err != nil {
			return nil, err
		}
		if !slo.HasLLM() {
			return nil, fmt.Errorf("--slo %s: latency and error terms go with a sweep (--rate FROM:TO:STEP or --concurrency FROM:TO:STEP); one run takes LLM terms (ttft_p99<500ms,itl_p99<50ms) for an OpenAI-compatible target's goodput", *f.sloSpec)
		}
		if err := llmTermsUnderTimeout(slo, opts.bench.Timeout); err != nil {
			return nil, err
		}
		opts.bench.SLO, opts.bench.SLOSpec = &slo, *f.sloSpec
	}
	if opts.cluster, err = f.cluster.options(fs); err != nil {
		return nil, err
	}
	if opts.cluster != nil {
		if err := opts.cluster.checkWithRun(opts); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// checkRanges checks the numeric flags that have a range.
func (f *runFlags) checkRanges() error {
	return firstError(
		nonNegativeDuration("--duration", *f.duration),
		atLeast("--requests", *f.requests, 0),
		positiveDuration("--timeout", *f.timeout),
		positiveDuration("--grace", *f.grace),
		positiveDuration("--send-slack", *f.sendSlack),
		atLeast("--max-inflight", *f.maxInflight, 1),
		atLeast("--max-response", *f.maxResponse, 1),
		atLeast("--max-payload", *f.maxPayload, 1),
		atLeast("--connections", *f.connections, 1),
		atLeast("--model-version", *f.modelVersion, 0),
		atLeast("--cpus", *f.cpus, 0),
		nonNegativeDuration("--profile-delay", *f.profileDelay),
		within("--search-tolerance", *f.tolerance, 0.001, 0.999),
		positiveFinite("--step-stability", *f.stability),
		atLeast("--step-repeats", *f.repeats, 0),
	)
}

func (f *runFlags) checkTargetAndData(fs *pflag.FlagSet) error {
	if (*f.url == "") == (*f.grpcAddr == "") {
		return errors.New("give one target, --url (REST) or --grpc HOST:PORT (see 'loadprof run --help')")
	}
	if *f.data == "" {
		return errors.New("--data is required (see 'loadprof run --help')")
	}
	if *f.url != "" && *f.protocol != bench.ProtocolTFServing {
		return fmt.Errorf("--protocol %s is for --grpc: over REST the URL's path says the protocol (/v1/models/NAME:predict or /v2/models/NAME/infer)", *f.protocol)
	}
	// Flags that would do nothing with the target are refused rather than
	// silently ignored: the run would not be the one asked for.
	var idle []string
	if *f.url != "" {
		for _, name := range []string{"model", "model-version", "model-label", "signature", "tensor-content"} {
			// --model also picks the model of --metrics' series.
			if fs.Changed(name) && (name != "model" || len(*f.metrics) == 0) {
				idle = append(idle, "--"+name)
			}
		}
		if len(idle) > 0 {
			return fmt.Errorf("%s: not used with --url, whose path names the model and version (%s, %s); they are for --grpc", strings.Join(idle, ", "), "/v1/models/NAME[/versions/V]:predict", "/v2/models/NAME[/versions/V]/infer")
		}
	}
	if *f.grpcAddr != "" && *f.protocol == bench.ProtocolV2 && fs.Changed("signature") {
		return fmt.Errorf("--signature: the V2 protocol (--protocol %s) has no signatures; leave it out", bench.ProtocolV2)
	}
	if *f.grpcAddr != "" && *f.v2Binary {
		return errors.New("--v2-binary: not used with --grpc, whose V2 tensors are typed contents or, with --tensor-content, raw_input_contents; it is for a V2 --url")
	}
	return nil
}

// loadLevel reads --rate or --concurrency: one level, or the steps of a
// sweep (then the level is a placeholder each step replaces).
func (f *runFlags) loadLevel() (rate float64, concurrency int, sweep *bench.Steps, err error) {
	if *f.rateSpec != "" && *f.concSpec != "" {
		return 0, 0, nil, errors.New("--rate and --concurrency exclude each other: choose an open or a closed loop")
	}
	for _, l := range []struct {
		name, spec string
		closed     bool
	}{{"--rate", *f.rateSpec, false}, {"--concurrency", *f.concSpec, true}} {
		if l.spec == "" {
			continue
		}
		if strings.Contains(l.spec, ":") {
			steps, err := bench.ParseSteps(l.name, l.spec)
			if err != nil {
				return 0, 0, nil, err
			}
			sweep = &steps
			if l.closed {
				concurrency = 1 // replaced per step
			} else {
				rate = 1
			}
			continue
		}
		v, err := strconv.ParseFloat(l.spec, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) || (l.closed && v != float64(int(v))) {
			return 0, 0, nil, fmt.Errorf("%s %q: want a positive number%s, or a FROM:TO:STEP sweep", l.name, l.spec, map[bool]string{true: " of requests"}[l.closed])
		}
		if l.closed {
			concurrency = int(v)
		} else {
			rate = v
		}
	}
	if (*f.search != "" || *f.profileSteps != "") && sweep == nil {
		return 0, 0, nil, errors.New("--search and --profile-steps go with a sweep (--rate FROM:TO:STEP or --concurrency FROM:TO:STEP)")
	}
	if *f.search != "" && *f.search != "binary" {
		return 0, 0, nil, fmt.Errorf("--search %q: the only search is binary", *f.search)
	}
	return rate, concurrency, sweep, nil
}

// sweepOptions checks what a sweep cannot do with the run's settings.
// minMetricsInterval is the shortest --metrics-interval.
const minMetricsInterval = 100 * time.Millisecond

// minStableStep is the shortest steady phase whose stability a sweep
// checks (bench compares the halves of its whole seconds, 4 at least).
const minStableStep = 5 * time.Second

func (f *runFlags) sweepOptions(steps bench.Steps, closed bool, opts *runOptions) (*sweepOptions, error) {
	if opts.errorBudget != nil {
		return nil, errors.New("--max-errors is for one run; a sweep's error limit goes in --slo (errors<0.1%)")
	}
	sw := &sweepOptions{steps: steps, closed: closed, slo: report.SLO{ErrPct: -1}, sloSpec: *f.sloSpec, binary: *f.search == "binary",
		tolerance: *f.tolerance, profileSteps: *f.profileSteps, repeats: *f.repeats, stability: *f.stability}
	if sw.sloSpec != "" {
		var err error
		if sw.slo, err = report.ParseSLO(sw.sloSpec); err != nil {
			return nil, err
		}
		timeout := opts.bench.Timeout
		for name, limitMs := range sw.slo.Latency {
			// A timed-out request counts as --timeout in the latency: a limit
			// at or above it could never be broken by timeouts.
			if timeoutMs := float64(timeout) / float64(time.Millisecond); limitMs >= timeoutMs {
				return nil, fmt.Errorf("--slo %s<%gms is not below --timeout %v: timed-out requests count as %v and could never break it; raise --timeout", name, limitMs, timeout, timeout)
			}
		}
	}
	if sw.profileSteps != "" && opts.bench.Profile == nil {
		return nil, errors.New("--profile-steps needs --profile HOST:PORT")
	}
	for flag, path := range map[string]string{"--hgrm": opts.outputs.hgrm, "--hlog": opts.outputs.hlog} {
		if path != "" {
			return nil, fmt.Errorf("%s is one run's latency distribution; a sweep keeps every step's in --out (steps[].result), and --html plots them", flag)
		}
	}
	// Stability compares the halves of a step's whole steady seconds, at
	// least two each: a steady phase that starts mid-second needs 5 s.
	if d := opts.bench.Plan.Duration; d == 0 || d < minStableStep {
		sw.notes = append(sw.notes, fmt.Sprintf("--step-stability was not checked: it needs steps of at least %v of steady load (--duration), to compare the halves of 4 whole seconds", minStableStep))
	}
	return sw, nil
}

// setUpProcess applies the flags that concern loadprof's own process:
// --cpus and the hidden --cpuprofile. stop ends the CPU profile.
func (o *runOptions) setUpProcess() (stop func(), err error) {
	setProcs(o.cpus, o.bench)
	if o.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(o.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// checkBeforeLoad finds, before any load is sent, what would stop the run
// from finishing: outputs that cannot be written, too few file
// descriptors for the connections.
func (o *runOptions) checkBeforeLoad() error {
	tls := o.bench.TLS
	if err := o.outputs.check(o.bench.Profile, outfile.Input{Flag: "--data", Path: o.bench.DataPath},
		outfile.Input{Flag: "--ca", Path: tls.CA}, outfile.Input{Flag: "--cert", Path: tls.Cert}, outfile.Input{Flag: "--key", Path: tls.Key}); err != nil {
		return err
	}
	return checkOpenFileLimit(o.maxConns, o.connsFlag)
}

// connectionsNeeded is the most connections the run (every step of a
// sweep) may hold open at once, and the flag that sets it.
func connectionsNeeded(cfg bench.Config, sweep *bench.Steps) (int, string) {
	switch {
	case cfg.GRPC.Addr != "":
		return cfg.GRPC.Connections, "--connections"
	case cfg.Plan.Concurrency > 0 && sweep != nil:
		return int(sweep.Values[len(sweep.Values)-1]), "--concurrency"
	case cfg.Plan.Concurrency > 0:
		return cfg.Plan.Concurrency, "--concurrency"
	}
	return cfg.Plan.MaxInflight, "--max-inflight"
}

// runAndReport runs once, prints the summary, writes the outputs and maps
// the outcome to an exit code. Results already measured are printed and
// written in every case.
func runAndReport(ctx context.Context, opts *runOptions, stdout, stderr io.Writer) int {
	cfg := opts.bench
	var res *report.Result
	var err error
	// A coordinated run writes its interval log once the workers'
	// seconds are in; one machine's streams it.
	cfg.IntervalLog = opts.outputs.intervalLog()
	if opts.cluster != nil {
		res, err = opts.cluster.coordinate(ctx, cfg, stderr)
	} else {
		res, err = bench.Run(ctx, cfg)
	}
	if res != nil {
		inFlagTerms(res)
		err = opts.outputs.writeResult(res, err, stderr)
		report.WriteSummary(stdout, res)
		o := opts.outputs
		if o.result != "" || o.hgrm != "" || o.hlog != "" {
			fmt.Fprintln(stdout)
		}
		reportOutput(stdout, "result", o.result, err)
		reportOutput(stdout, "latency distribution", o.hgrm, err)
		reportOutput(stdout, "interval log", o.hlog, err)
	}
	if err != nil {
		printError(stderr, "run", err)
	} else if res != nil && res.Profile != nil && res.Profile.Error != "" {
		fmt.Fprintf(stderr, "loadprof run: warning: %s (load results are complete)\n", res.Profile.Error)
	}
	code := exitCode(err, interruptCode(ctx))
	if opts.errorBudget != nil && res != nil && code == exitOK {
		if over, what := report.ErrorsOver(res, *opts.errorBudget); over {
			fmt.Fprintf(stderr, "loadprof run: --max-errors: %s\n", what)
			code = exitRegression
		}
	}
	if opts.outputs.html != "" && res != nil {
		name := opts.outputs.result
		if name == "" || name == outfile.Stdout {
			name = "run"
		}
		err := writeHTML(opts.outputs.html, []*report.Result{res}, []string{name})
		if err != nil {
			printError(stderr, "run", err)
			if code == exitOK || code == exitInterrupted || code == exitTerminated {
				code = exitCode(err, 0)
			}
		}
		reportOutput(stdout, "HTML report", opts.outputs.html, err)
	}
	return code
}

// sweepAndReport runs a sweep and prints its table; result.json holds
// every step, --html plots them. It exits 3 when no step had a successful
// request, and 1 when an SLO was given and no step met it.
func sweepAndReport(ctx context.Context, opts *runOptions, stdout, stderr io.Writer) int {
	sw := opts.sweep
	sc := bench.SweepConfig{Base: opts.bench, Closed: sw.closed, Steps: sw.steps, SLO: sw.slo, Binary: sw.binary, Tolerance: sw.tolerance,
		ProfileSteps: sw.profileSteps, Repeats: sw.repeats, Stability: sw.stability, Progress: opts.bench.Progress}
	if sc.Progress == nil {
		sc.Progress = io.Discard
	}
	sc.Base.Progress = nil
	if opts.cluster != nil {
		// The workers join once; each step is a round on them.
		base := sc.Base
		if sw.closed {
			base.Plan.Concurrency = int(sw.steps.Values[0])
		} else {
			base.Plan.Rate = sw.steps.Values[0]
		}
		session, err := opts.cluster.open(ctx, base, stderr)
		if err != nil {
			printError(stderr, "run", err)
			return exitCode(err, interruptCode(ctx))
		}
		defer session.Close()
		defer stopWorkersOnQuit(session)()
		sc.Run = session.Run
	}
	res, err := bench.RunSweep(ctx, sc)
	code := exitCode(err, interruptCode(ctx))
	if res == nil {
		if err != nil {
			printError(stderr, "run", err)
		}
		return code
	}
	for i := range res.Steps {
		inFlagTerms(res.Steps[i].Result)
		for j, b := range res.Steps[i].Broken {
			res.Steps[i].Broken[j] = inFlags(b)
		}
	}
	res.Stopped = inFlags(res.Stopped)
	res.SLO, res.Config = sw.sloSpec, opts.bench.Settings
	report.WriteSweepSummary(stdout, res)
	for _, note := range sw.notes {
		fmt.Fprintf(stdout, "note: %s\n", note)
	}
	if err != nil {
		printError(stderr, "run", err)
	}
	switch {
	case code == exitOK && res.NoSuccess():
		// As for one run: no request succeeded is the target's failure
		// (exit 3), not an SLO the server broke.
		fmt.Fprintln(stderr, "loadprof run: no step had a successful request")
		code = exitTarget
	case code == exitOK && sw.sloSpec != "" && res.MaxPassing == nil:
		fmt.Fprintf(stderr, "loadprof run: no step met the SLO (%s)\n", sw.sloSpec)
		code = exitRegression
	}
	var werrs []error
	if path := opts.outputs.result; path != "" {
		werr := flagged(res.WriteJSON(path), "--out")
		fmt.Fprintln(stdout)
		reportOutput(stdout, "result", path, werr)
		werrs = append(werrs, werr)
	}
	if path := opts.outputs.html; path != "" {
		var buf bytes.Buffer
		werr := report.WriteSweepHTML(&buf, res)
		if werr == nil {
			werr = outfile.Write("--html", path, buf.Bytes())
		}
		reportOutput(stdout, "HTML report", path, werr)
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
		case "metrics-header":
			hs, _ := parseHeaders(f.Name, f.Value.(pflag.SliceValue).GetSlice()) // checked already
			m[f.Name] = bench.RedactHeaders(hs)
		case "url":
			m[f.Name] = bench.RedactURL(f.Value.String())
		case "metrics":
			urls := f.Value.(pflag.SliceValue).GetSlice()
			for i, u := range urls {
				urls[i] = bench.RedactURL(u)
			}
			m[f.Name] = urls
		case "token":
			// The coordinator's secret: result.json says whether one was
			// given on the command line, never what it is.
			if f.Value.String() != "" {
				m[f.Name] = "<redacted>"
			}
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

// parseHeaders reads the "Key: value" values of flag.
func parseHeaders(flag string, values []string) ([]load.Header, error) {
	var hs []load.Header
	for _, v := range values {
		h, err := load.ParseHeader(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// nonBlankLines is s's lines that hold more than blanks.
func nonBlankLines(s string) []string {
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// llmTermsUnderTimeout refuses the TTFT, ITL and TPOT terms at or above
// --timeout: on a stream the timeout bounds the wait for each event, so a
// first token or a gap that long fails its request as stalled and never
// reaches the figures the term judges, which could then never break it.
// The e2e terms are kept: a stream may run past the timeout, its events
// each within it.
func llmTermsUnderTimeout(slo report.SLO, timeout time.Duration) error {
	for _, name := range slo.LLMTermNames() {
		if strings.HasPrefix(name, "e2e_") {
			continue
		}
		limit := time.Duration(slo.LLM[name] * float64(time.Millisecond))
		if limit >= timeout {
			return fmt.Errorf("--slo %s<%v: at or above --timeout %v (a first token or token gap that late fails the request as stalled, so the term could never be broken); lower the limit or raise --timeout", name, limit, timeout)
		}
	}
	return nil
}

// profileHTTPTarget is --profile-http given alone: the target's own
// HOST:PORT, where vLLM serves its profiler control beside the API.
const profileHTTPTarget = "target"

// profileHTTPBase is the profiler control's base URL from --profile-http.
func profileHTTPBase(given, grpcProfile, target string) (string, error) {
	switch {
	case grpcProfile != "":
		return "", errors.New("--profile and --profile-http: give one window backend (the gRPC ProfilerService or vLLM's HTTP control)")
	case given == profileHTTPTarget && target == "":
		return "", errors.New("--profile-http alone uses the --url target's HOST:PORT: give --profile-http=http://HOST:PORT with --grpc")
	case given == profileHTTPTarget:
		given = ""
	case given == "":
		return "", errors.New("--profile-http=: give http://HOST:PORT, or --profile-http alone for the --url target's")
	}
	base, err := profile.HTTPBase(given, target)
	if err != nil {
		return "", fmt.Errorf("--profile-http %w", err)
	}
	return base, nil
}
