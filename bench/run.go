// Package bench runs one benchmark: it loads the payloads, checks the
// target, drives warm-up and steady load, and turns what was recorded into
// a Result with its reports.
package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/servermetrics"
)

// Version is loadprof's version (report.Version, which results carry).
const Version = report.Version

// InputError is bad usage or bad input: a setting (a *load.SettingError
// inside) or a payload file. The command exits 2 on it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// TargetError is a target that cannot be reached or that fails every
// request. The command exits 3 on it.
type TargetError struct{ Err error }

func (e *TargetError) Error() string { return e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// TLSFiles are the TLS settings of a target.
type TLSFiles struct {
	Enabled            bool // TLS for a gRPC target (https:// URLs imply it)
	CA                 string
	Cert, Key          string
	InsecureSkipVerify bool
}

// Config is everything one run needs. The target is URL (REST) or GRPC.
type Config struct {
	URL  string
	GRPC GRPCTarget

	Headers         []load.Header
	DataPath        string
	Stdin           io.Reader
	MaxPayloadBytes int64 // per payload file; payloads.DefaultMaxBytes when 0
	// PayloadOffset is the payload the round-robin starts at (modulo their
	// number): workers of one coordinated run start at different ones, so
	// that together they send the payloads in the proportions one machine
	// would.
	PayloadOffset    int
	Plan             load.Plan
	Timeout          time.Duration
	MaxResponseBytes int
	TLS              TLSFiles
	RESTEngine       load.Engine
	// V2Binary sends a V2 REST target's tensors in the binary tensor
	// extension instead of JSON data.
	V2Binary bool

	Profile *ProfileConfig // a profile window in the steady phase; nil for none
	// RemoteWindow is a profile window another process opens (the
	// coordinator of a cluster run); nil for none. Not with Profile.
	RemoteWindow *RemoteWindow
	Metrics      *MetricsConfig // the server's Prometheus metrics to scrape; nil for none
	// SLO is the objective whose LLM terms (ttft_p99<500ms, ...) an
	// OpenAI-compatible target's requests are judged by one by one for
	// goodput (Result.Goodput); SLOSpec is it as written. Nil for none.
	// LLM terms with any other target are refused.
	SLO     *report.SLO
	SLOSpec string

	// IntervalLog, when set, opens the writer an HdrHistogram interval log
	// streams to, one histogram per second as the run goes. Run calls it
	// once, when the load is about to start (a run that fails its checks
	// opens nothing), and closes the writer before it returns; a failed
	// write or close is the run's error, returned with the Result.
	IntervalLog func() (io.WriteCloser, error)

	// StartAt, when set, is when the load starts (this machine's clock):
	// the checks and the preflight call are made before it, so that a
	// slow first answer (an LLM's whole stream) does not delay the load
	// of a coordinated run past its common start. A run ready later
	// starts at once.
	StartAt time.Time
	// AwaitStart, when set, is called once the checks and the preflight
	// call are made, and gives the start (as StartAt, which it replaces):
	// a coordinated run's worker says it is ready and is told the common
	// start. An error ends the run before any load is sent.
	AwaitStart func(context.Context) (time.Time, error)

	// Progress gets the run's progress: on a terminal one line rewritten
	// every second, elsewhere (a CI log) a line every 10 s; nil for none.
	Progress      io.Writer
	ProgressEvery time.Duration // the period of the progress lines; 0 for the default
	// Watch, when set, is called once as the load is about to start with
	// a function that reads the run's progress (cheap, safe to call from
	// any goroutine until Run returns): a worker's heartbeat.
	Watch    func(progress func() load.Progress)
	Warnings io.Writer      // one line for each problem that does not stop the run; nil for none
	Settings map[string]any // the settings that shaped the run as the caller names them, result.json's "config"
}

// Run performs a run. It returns the Result whenever load was sent, also
// with an error (a target that failed every request, an interval log or a
// trace that could not be written) and when ctx was cancelled
// (Result.Interrupted). It writes no files but the profile's trace store
// in cfg.Profile.Options.LogDir: writing the Result is the caller's job.
func Run(ctx context.Context, cfg Config) (*report.Result, error) {
	if err := cfg.check(); err != nil {
		return nil, &InputError{err}
	}
	if err := checkLogDir(cfg); err != nil {
		return nil, &InputError{err}
	}
	set, err := loadPayloads(cfg)
	if err != nil {
		return nil, &InputError{err}
	}
	if n := set.Len(); n > 1 && cfg.PayloadOffset%n != 0 {
		k := (cfg.PayloadOffset%n + n) % n
		set.Payloads = append(set.Payloads[k:], set.Payloads[:k]...)
	}
	if (cfg.URL == "") == (cfg.GRPC.Addr == "") {
		return nil, &InputError{setting.Errorf("bench.Config.URL", "give one target: bench.Config.URL (REST) or bench.Config.GRPC.Addr (gRPC)")}
	}
	if cfg.SLO != nil && cfg.SLO.HasLLM() {
		if _, ok := openAIEndpoint(cfg); !ok {
			return nil, &InputError{setting.Errorf("bench.Config.SLO", "bench.Config.SLO %s: only an OpenAI-compatible target (a URL ending in /v1/completions or /v1/chat/completions) has stream figures; give the latency terms (p99<50ms) for this one",
				strings.Join(cfg.SLO.LLMTermNames(), ","))}
		}
	}
	tlsConfig, err := cfg.TLS.config()
	if err != nil {
		return nil, &InputError{err}
	}
	var t *target
	if cfg.GRPC.Addr != "" {
		t, err = prepareGRPC(ctx, cfg, set, tlsConfig)
	} else {
		t, err = prepareREST(ctx, cfg, set, tlsConfig)
	}
	if err != nil {
		return nil, err
	}
	defer t.tr.Close()
	if err := t.preflight(ctx); err != nil {
		return nil, interruptedOr(ctx, err)
	}
	if cfg.Profile != nil {
		// Found now, not after the load: a profiler that cannot be reached.
		if err := cfg.Profile.check(ctx, tlsConfig); err != nil {
			if cfg.Profile.Required {
				return nil, interruptedOr(ctx, &TargetError{fmt.Errorf("bench.Config.Profile.Required: %w", err)})
			}
			if cfg.Warnings != nil {
				fmt.Fprintf(cfg.Warnings, "warning: %v; the load runs and the window tries again (bench.Config.Profile.Required stops here instead)\n", err)
			}
		}
	}

	warnWindowOutlastsDuration(cfg)
	if cfg.AwaitStart != nil {
		at, err := cfg.AwaitStart(ctx)
		if err != nil {
			return nil, interruptedOr(ctx, err)
		}
		cfg.StartAt = at
	}
	if !cfg.StartAt.IsZero() {
		t := time.NewTimer(time.Until(cfg.StartAt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, interruptedOr(ctx, ctx.Err())
		}
	}
	rec := load.NewRecorder()
	perSecond := newSecondHistograms()
	defer perSecond.close()
	var hlog *report.HlogWriter
	if cfg.IntervalLog != nil {
		out, err := cfg.IntervalLog()
		if err != nil {
			return nil, err
		}
		hasWarmup := cfg.Plan.WarmupDuration > 0 || cfg.Plan.WarmupRequests > 0
		if hlog, err = report.NewHlog(out, rec.Origin(), hasWarmup, cfg.Warnings); err != nil {
			return nil, err
		}
		if cfg.Profile != nil {
			hlog.WatchWindow(rec.WindowState)
		}
		perSecond.next = hlog
		if t.llm != nil {
			hlog.KeepStreams()
		}
	}
	if t.llm != nil {
		// Each second's stream figures, for the series' TTFT and the
		// interval log, closed by the tick that closes the latency's.
		t.llm.KeepSeconds()
		perSecond.llm = t.llm
	}
	rec.SetIntervalSink(perSecond)
	plan := cfg.Plan
	var win *window
	if cfg.Profile != nil {
		win = newWindow(*cfg.Profile, cfg.Plan.Grace, tlsConfig, rec)
		plan.Hold = win.hold
		plan.SteadyStarted = func() { win.start(ctx) }
	}
	var remoteEvents func() []profile.ClientEvent
	if cfg.RemoteWindow != nil {
		plan.Hold, remoteEvents = cfg.RemoteWindow.follow(ctx, rec)
	}
	metrics, err := startMetrics(ctx, cfg)
	if err != nil {
		closeHlog(hlog)
		return nil, &InputError{err}
	}
	metrics.watch(&plan, win)
	if cfg.Watch != nil {
		cfg.Watch(rec.Progress)
	}
	stopProgress := startProgress(cfg.Progress, rec, plan, cfg.ProgressEvery)
	timing, err := load.Run(ctx, plan, t.tr, set, rec)
	if t.llm != nil {
		t.llm.Freeze() // as rec is: a request that outlived the run's wait is in neither
	}
	hurryOf(ctx).loadEnded() // a second interrupt now cuts the waits short, not the results
	stopProgress()
	metrics.mark(servermetrics.MarkSteadyEnd)
	if err != nil {
		metrics.close()
		closeHlog(hlog)
		return nil, &InputError{err}
	}
	// The capture is finished first: it may narrow the window's statistics
	// to the interval the server traced.
	var profileReport *report.ProfileReport
	if win != nil {
		profileReport = win.finish()
	}
	if rw := cfg.RemoteWindow; rw != nil && rw.ClosedAt != nil {
		if closed := rw.ClosedAt(); !closed.IsZero() && closed.Before(rw.Open.Add(rw.Length)) {
			origin := rec.Origin()
			rec.NarrowWindow(rw.Open.Sub(origin), closed.Sub(origin))
		}
	}
	if remoteEvents != nil && cfg.RemoteWindow.Events != nil {
		cfg.RemoteWindow.Events(remoteEvents(), rec.WindowTruncated())
	}
	res, err := buildResult(cfg, t, timing, rec.Snapshot(true))
	if err != nil {
		closeHlog(hlog)
		return nil, err
	}
	perSecond.closeStreams()
	perSecond.addTTFT(res.Series)
	if res.SeriesHistograms, err = perSecond.forSeries(res.Series); err != nil {
		closeHlog(hlog)
		return nil, err
	}
	if win != nil {
		res.Profile = profileReport
	}
	metrics.finish(res, rec.Origin(), cfg.Warnings)
	if err := finishOutputs(hlog, win); err != nil {
		return res, err
	}
	if win != nil && win.err != nil && cfg.Profile.Required && !res.Interrupted {
		return res, &TargetError{win.err}
	}
	if res.Requests > 0 && report.Successes(res) == 0 && !res.Interrupted {
		return res, &TargetError{fmt.Errorf("%s: no request succeeded (%s)", t.name, describeErrors(res))}
	}
	return res, nil
}

// RemoteWindow is a profile window opened elsewhere, at a time agreed in
// advance: the run counts the requests it sends between Open and
// Open+Length (on this machine's clock) as the window's, keeps its steady
// phase going until the window has closed, and hands those requests to
// Events (once, after the load; nil Events for none) for the trace's
// client plane.
type RemoteWindow struct {
	Open   time.Time
	Length time.Duration
	Events func(events []profile.ClientEvent, truncated bool)
	// ClosedAt, when set, is asked after the load for when the window
	// really closed (this machine's clock): the zero time when it ran
	// its length. A window closed early (the coordinator interrupted)
	// counts only the requests sent before it closed; the later ones are
	// outside.
	ClosedAt func() time.Time
}

// follow marks rec's window open and closed at w's times; hold closes when
// the window has closed (or ctx is done). events returns the requests of
// the window on the wall clock.
func (w *RemoteWindow) follow(ctx context.Context, rec *load.Recorder) (hold <-chan struct{}, events func() []profile.ClientEvent) {
	h := make(chan struct{})
	go func() {
		defer close(h)
		for i, at := range []time.Time{w.Open, w.Open.Add(w.Length)} {
			t := time.NewTimer(time.Until(at))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				rec.SetWindow(false)
				return
			}
			rec.SetWindow(i == 0)
		}
	}()
	return h, func() []profile.ClientEvent {
		if w.Events == nil {
			return nil
		}
		origin := rec.Origin()
		samples := rec.WindowSamples()
		out := make([]profile.ClientEvent, len(samples))
		for i, s := range samples {
			out[i] = profile.ClientEvent{Start: origin.Add(s.Start), Sent: origin.Add(s.Sent), End: origin.Add(s.Done), Status: s.Outcome.Key().String()}
		}
		return out
	}
}

// Config returns the TLS settings the files make, nil for plaintext.
func (t TLSFiles) Config() (*tls.Config, error) { return t.config() }

// closeHlog finishes the interval log of a run that ends without results:
// the log keeps the seconds it has.
func closeHlog(h *report.HlogWriter) {
	if h != nil {
		_ = h.Close()
	}
}

// target is a transport ready to send, and how to check it first.
type target struct {
	name      string // what the results call it
	kind      string // "rest" or "grpc"
	protocol  string // report.ProtocolTF, ProtocolV2, ...
	tr        load.Transport
	engine    load.Engine                 // REST only
	llm       *load.LLMRecorder           // an OpenAI-compatible target's stream timings; nil for others
	preflight func(context.Context) error // cancelling the context ends it at once
}

func prepareREST(ctx context.Context, cfg Config, set *payloads.Set, tlsConfig *tls.Config) (*target, error) {
	if _, ok := openAIEndpoint(cfg); ok {
		return prepareOpenAIREST(ctx, cfg, set, tlsConfig)
	}
	if u, err := url.Parse(cfg.URL); err == nil {
		route, ok, err := load.ParseV2InferPath(u.Path)
		if err != nil {
			return nil, &InputError{setting.Errorf("bench.Config.URL", "bench.Config.URL %s: %v", RedactURL(cfg.URL), err)}
		}
		if ok {
			return prepareV2REST(ctx, cfg, set, tlsConfig, route)
		}
	}
	if cfg.V2Binary {
		return nil, &InputError{setting.Errorf("bench.Config.V2Binary", "bench.Config.V2Binary needs a V2 target: bench.Config.URL http://HOST:PORT/v2/models/NAME/infer")}
	}
	bodies := make([][]byte, set.Len())
	for i, p := range set.Payloads {
		if p.Request == nil {
			return nil, &InputError{notTFServing(p)}
		}
		bodies[i] = p.Body
	}
	rest, err := load.NewREST(load.RESTConfig{
		URL: cfg.URL, Headers: cfg.Headers, Bodies: bodies, Timeout: cfg.Timeout,
		MaxResponseBytes: cfg.MaxResponseBytes, TLS: tlsConfig, Engine: cfg.RESTEngine,
	})
	if err != nil {
		return nil, &InputError{err}
	}
	name := RedactURL(cfg.URL)
	return &target{name: name, kind: "rest", protocol: report.ProtocolTF, tr: rest, engine: rest.Engine(), preflight: func(ctx context.Context) error {
		return withV2Hint(ctx, preflightREST(ctx, rest, set, name, nil), cfg, tlsConfig)
	}}, nil
}

// notTFServing refuses a native V2 body for a TF Serving target.
func notTFServing(p payloads.Payload) error {
	return &payloads.Error{Source: p.Source, Msg: "a V2 (Open Inference Protocol) infer body, which a TF Serving target does not take: give a V2 target (/v2/models/NAME/infer) or a TF Serving body"}
}

// preflightREST sends the first payload once. A target that cannot be
// reached, or that rejects the payload (4xx), fails the run before any load
// is sent; a timeout or a transient 5xx or 429 is left to the run to count.
func preflightREST(ctx context.Context, rest *load.REST, set *payloads.Set, url string, serverError func(ctx context.Context, code int) error) error {
	out, body := probeTolerantly(ctx, func() (load.Outcome, string) { return rest.Probe(ctx, 0) })
	switch {
	case out.Class == load.OK || out.Class == load.Timeout:
		return nil // a slow first call (lazy initialisation) is the warm-up's business
	case out.Class == load.HTTPStatus && (out.Code >= 500 || out.Code == 429):
		if serverError != nil {
			return serverError(ctx, out.Code)
		}
		return nil
	case out.Class == load.BadResponse && rest.IsV2():
		return &TargetError{fmt.Errorf("%s answered %s with %d and something that is not a V2 infer response: %v", url, set.Payloads[0].Source, out.Code, out.Err)}
	case out.Class == load.HTTPStatus:
		if rest.IsV2() && out.Err != nil {
			// A V2 server's words are its "error" text.
			body = strings.TrimPrefix(out.Err.Error(), fmt.Sprintf("HTTP %d: ", out.Code))
		}
		return &TargetError{&statusError{out.Code, fmt.Errorf("%s answered %d to %s: %s", url, out.Code, set.Payloads[0].Source, strings.TrimSpace(body))}}
	case out.Class == load.TooLarge:
		if errors.Is(out.Err, load.ErrResponseHeadTooLarge) || errors.Is(out.Err, load.ErrResponseTrailerTooLarge) {
			// A head or trailer over the fixed limit: no flag raises it.
			return &TargetError{fmt.Errorf("%s: the response to %s: %v", url, set.Payloads[0].Source, out.Err)}
		}
		return &TargetError{fmt.Errorf("%s: the response to %s is larger than bench.Config.MaxResponseBytes allows (%v)", url, set.Payloads[0].Source, out.Err)}
	case out.Class != load.ConnRefused:
		// Something answered, but not with HTTP/1.x: say what it speaks.
		if hint := rest.Sniff(ctx); hint != "" {
			return &TargetError{fmt.Errorf("%s: %s (%s: %v)", url, hint, out.Key(), out.Err)}
		}
	}
	return &TargetError{fmt.Errorf("%s: %s: %v", url, out.Key(), out.Err)}
}

// preflightTries is how many times a preflight sends its payload when the
// connection is dropped under it: a dropped connection may be a one-off; a
// refused one is not.
const preflightTries = 3

// probeTolerantly calls probe until it returns something other than a
// dropped connection, at most preflightTries times, or until ctx is
// cancelled.
func probeTolerantly(ctx context.Context, probe func() (load.Outcome, string)) (load.Outcome, string) {
	out, body := probe()
	for try := 1; try < preflightTries && (out.Class == load.ConnReset || out.Class == load.ConnClosed) && ctx.Err() == nil; try++ {
		out, body = probe()
	}
	return out, body
}

// warnWindowOutlastsDuration says when the profile window ends after the
// steady phase's --duration: the steady phase is held until it closes,
// so it runs longer than asked.
func warnWindowOutlastsDuration(cfg Config) {
	p := cfg.Profile
	if p == nil || cfg.Warnings == nil || cfg.Plan.Duration <= 0 {
		return
	}
	length := p.Options.Duration
	if length <= 0 {
		length = profile.DefaultDuration
	}
	if end := p.Delay + length; end > cfg.Plan.Duration {
		fmt.Fprintf(cfg.Warnings, "warning: load.Plan.Duration %v is shorter than the profile window, which closes %v into the steady phase (bench.Config.Profile.Delay %v + profile.Options.Duration %v): the steady phase lasts until it has closed\n",
			cfg.Plan.Duration, end, p.Delay, length)
	}
}

// interruptedOr returns err, or, when ctx was cancelled meanwhile, an
// error that says the run was interrupted before any load was sent (the
// failure it caused is no fault of the target's).
func interruptedOr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("interrupted before any load was sent: %w", ctx.Err())
}

// LoadCertPool reads the PEM certificates of path; name is the setting
// that gave it, for errors.
func LoadCertPool(name, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, setting.Errorf(name, "%s %s: %w", name, path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, setting.Invalid(name, path, "no PEM certificate in the file")
	}
	return pool, nil
}

// config returns the TLS settings, or nil for plaintext (a gRPC target
// without TLS; an https:// URL gets default settings from the transport).
func (t TLSFiles) config() (*tls.Config, error) {
	if !t.Enabled && t.CA == "" && t.Cert == "" && t.Key == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	c := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user asked for it
	if t.CA != "" {
		pool, err := LoadCertPool("bench.Config.TLS.CA", t.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, setting.Errorf("bench.Config.TLS.Cert", "bench.Config.TLS.Cert and bench.Config.TLS.Key go together")
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, setting.Errorf("bench.Config.TLS.Cert", "bench.Config.TLS.Cert %s / bench.Config.TLS.Key %s: %w", t.Cert, t.Key, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

func buildResult(cfg Config, t *target, timing load.Timing, snap load.Snapshot) (*report.Result, error) {
	seconds := func(d time.Duration) float64 { return d.Seconds() }
	res := &report.Result{
		Version:     report.ResultVersion,
		Tool:        "loadprof " + Version,
		Config:      cfg.Settings,
		StartedAt:   timing.Start.UTC(),
		Target:      t.name,
		Transport:   t.kind,
		Protocol:    t.protocol,
		Loop:        "closed",
		Rate:        cfg.Plan.Rate,
		Concurrency: cfg.Plan.Concurrency,
		LatencyFrom: "send",
		Requests:    snap.Steady.Requests,
		Errors:      errorNames(snap.Steady.Errors),
		Latency:     report.StatsOf(snap.Steady.Histogram),
		LatencyOK:   report.StatsOf(snap.Steady.OK),
		Series:      seriesOf(snap.Series),
		Interrupted: timing.Interrupted,
		Unfinished:  timing.Unfinished,
		Client: report.ClientStats{
			MaxSendLagMs:     float64(timing.MaxSendLag) / float64(time.Millisecond),
			MaxFreeSendLagMs: float64(timing.MaxFreeSendLag) / float64(time.Millisecond),
			Saturated:        timing.Saturated, NotSent: timing.NotSent,
			PeakInflight: timing.PeakInflight, LateSamples: snap.Late,
			Engine: string(t.engine),
		},
	}
	if rest, ok := t.tr.(*load.REST); ok {
		res.Client.Resent = rest.Resent()
	}
	if timing.SendLag != nil && timing.SendLag.TotalCount() > 0 {
		lag := report.StatsOf(timing.SendLag)
		res.Client.SendLag = &lag
	}
	if cfg.Plan.Rate > 0 {
		res.Loop, res.LatencyFrom = "open", "intended_send"
		res.MaxInflight = cfg.Plan.MaxInflight
	}
	if len(snap.FirstErrors) > 0 {
		res.ErrorSamples = map[string]string{}
		for k, msg := range snap.FirstErrors {
			res.ErrorSamples[k.String()] = msg
		}
	}
	phase := func(p *load.PhaseStats) report.Phase {
		ph := report.Phase{Requests: p.Requests, Errors: errorNames(p.Errors), Latency: report.StatsOf(p.Histogram)}
		if p.Requests > 0 {
			ph.Start, ph.End = seconds(p.FirstAt), seconds(p.LastAt)
		}
		return ph
	}
	res.Phases = report.Phases{Warmup: phase(snap.Warmup), Steady: phase(snap.Steady)}
	span := steadySpan(cfg.Plan, snap.Steady, timing.Interrupted)
	if snap.Steady.Requests > 0 && span > 0 {
		res.ThroughputRPS = float64(snap.Steady.Requests) / span.Seconds()
		res.SuccessRPS = float64(snap.Steady.Requests-snap.Steady.ErrorTotal()) / span.Seconds()
	}
	var err error
	if t.llm != nil {
		if err = addLLM(res, t.llm.Snapshot().Steady, span, cfg); err != nil {
			return nil, err
		}
	}
	if res.Histogram, err = report.EncodeHistogram(snap.Steady.Histogram); err != nil {
		return nil, err
	}
	if res.HistogramOK, err = report.EncodeHistogram(snap.Steady.OK); err != nil {
		return nil, err
	}
	if snap.Window.Requests > 0 {
		if res.Window, err = sliceOf(snap.Window); err != nil {
			return nil, err
		}
	}
	if res.Window != nil {
		// Without a window "outside" would be every steady request again.
		if res.Outside, err = sliceOf(snap.Outside); err != nil {
			return nil, err
		}
		if t.llm != nil {
			llm := t.llm.Snapshot()
			if err = addLLMWindow(res, llm.Window, llm.Outside); err != nil {
				return nil, err
			}
		}
	}
	if snap.Warmup.Histogram.TotalCount() > 0 {
		if res.Phases.Warmup.Histogram, err = report.EncodeHistogram(snap.Warmup.Histogram); err != nil {
			return nil, err
		}
	}
	res.FinishedAt, res.Units, res.Build, res.Host = time.Now().UTC(), report.CurrentUnits, report.CurrentBuild(), report.CurrentHost()
	return res, nil
}

// steadySpan is the time throughput is divided by: from the first steady
// request's start to the last one's end, but never shorter than the plan
// made the phase: n open-loop requests are 1/rate apart, so they take n/rate
// however fast each one is answered, and a closed loop that finished its
// Duration took that long. (A run of one request at rate 1 is 1 req/s, not
// one over its 2 ms latency.)
func steadySpan(plan load.Plan, steady *load.PhaseStats, interrupted bool) time.Duration {
	span := steady.LastAt - steady.FirstAt
	switch {
	case plan.Rate > 0:
		span = max(span, time.Duration(float64(steady.Requests)/plan.Rate*float64(time.Second)))
	case plan.Duration > 0 && !interrupted:
		span = max(span, plan.Duration)
	}
	return span
}

func describeErrors(res *report.Result) string {
	var parts []string
	for _, k := range report.SortedKeys(res.Errors) {
		s := fmt.Sprintf("%s: %d", k, res.Errors[k])
		if msg := res.ErrorSamples[k]; msg != "" && msg != k {
			s += " (" + msg + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// RedactHeaders returns headers as "Key: value" strings with the values of
// credentials replaced, for results and logs.
func RedactHeaders(headers []load.Header) []string {
	out := make([]string, len(headers))
	for i, h := range headers {
		v := h.Value
		if isSecretHeader(h.Key) {
			v = "<redacted>"
		}
		out[i] = h.Key + ": " + v
	}
	return out
}

// RedactURL returns raw with its credentials replaced, for results and
// logs: the password of user:password@ and the values of query parameters
// whose names look like secrets (api_key, token, sig, ...).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k, vs := range q {
			if isSecretHeader(k) || isSecretQueryName(k) {
				for i := range vs {
					vs[i] = "redacted"
				}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// isSecretQueryName reports whether a query parameter is a credential by
// the names services commonly use for them (beyond the header words).
func isSecretQueryName(name string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	for _, s := range []string{"key", "sig", "signature", "credential", "auth", "pass", "pwd"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// isSecretHeader reports whether a header's name looks like it carries a
// credential: the one rule for -H and --metrics-header. Over-redacting a
// harmless header costs a value in result.json; missing a credential
// leaks it, so the rule is wide: a name holding secret, token, password,
// cookie, authorization or credential anywhere, or a word (between - and
// _) or an ending that is auth, key, pass, pwd, sig or session.
func isSecretHeader(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"secret", "token", "password", "passwd", "cookie", "authorization", "credential", "apikey"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	words := strings.FieldsFunc(k, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	for _, w := range words {
		switch w {
		case "auth", "key", "pass", "pwd", "sig", "signature", "session":
			return true
		}
	}
	return strings.HasSuffix(k, "key") || strings.HasSuffix(k, "auth")
}

func errorNames(m map[load.ErrorKey]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k.String()] += v
	}
	return out
}

func sliceOf(p *load.PhaseStats) (*report.Slice, error) {
	enc, err := report.EncodeHistogram(p.Histogram)
	if err != nil {
		return nil, err
	}
	encOK, err := report.EncodeHistogram(p.OK)
	if err != nil {
		return nil, err
	}
	return &report.Slice{Requests: p.Requests, Errors: errorNames(p.Errors), Latency: report.StatsOf(p.Histogram), LatencyOK: report.StatsOf(p.OK), Histogram: enc, HistogramOK: encOK}, nil
}

// seriesOf is the recorder's per-second series as result.json carries it.
func seriesOf(points []load.Second) []report.Second {
	if points == nil {
		return nil
	}
	out := make([]report.Second, len(points))
	for i, p := range points {
		out[i] = report.Second{Second: p.Second, Requests: p.Requests, Errors: p.Errors, P50Us: p.P50Us, P99Us: p.P99Us, MaxUs: p.MaxUs,
			P90Us: p.P90Us, Sent: p.Sent, Inflight: p.Inflight, BytesSent: p.BytesSent, BytesReceived: p.BytesReceived}
	}
	return out
}
