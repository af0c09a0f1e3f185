package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/servermetrics"
)

// MetricsConfig asks for the model server's Prometheus metrics to be
// scraped through the run (see package servermetrics).
type MetricsConfig struct {
	URLs     []string
	Interval time.Duration // between scrapes; 1 s when 0
	// Model keeps only this model's series; when empty, the model the
	// load is sent to (the REST URL's /models/NAME, or GRPC.Model).
	Model string
	// Timeout bounds one scrape; 2 s when 0.
	Timeout time.Duration
	// Headers are sent with every scrape, and only they: the load's
	// headers (Config.Headers, credentials of the model's endpoint) are
	// never sent to a metrics endpoint, which may be another host.
	Headers []load.Header
}

// metricsRun is the Samplers of one run, one per endpoint.
type metricsRun struct {
	cfg      MetricsConfig
	model    string
	samplers []*servermetrics.Sampler
	// interrupted is the run's context's Done: once the user pressed
	// Ctrl-C the last scrapes are waited for briefly; hurry ends the wait
	// at a second Ctrl-C.
	interrupted <-chan struct{}
	hurry       *Hurry
}

// Hurry carries a second interrupt to the waits at the end of a run. The
// first interrupt cancels the run's context: the load stops and the run
// reports what it measured, waiting a little for the last scrapes. A
// second one should not lose that: once the load has ended,
// Now cuts every remaining wait short and the results are still
// written; before, nothing is measured yet and the caller may just quit.
type Hurry struct {
	mu   sync.Mutex
	held bool // a run's load has ended
	now  chan struct{}
}

// NewHurry is a Hurry not yet hurried.
func NewHurry() *Hurry { return &Hurry{now: make(chan struct{})} }

type hurryKey struct{}

// WithHurry is ctx carrying h to the runs started with it.
func WithHurry(ctx context.Context, h *Hurry) context.Context {
	return context.WithValue(ctx, hurryKey{}, h)
}

// hurryOf is ctx's Hurry; nil (whose methods do little) without one.
func hurryOf(ctx context.Context) *Hurry {
	h, _ := ctx.Value(hurryKey{}).(*Hurry)
	return h
}

// loadEnded notes that a run's load has ended: results are held that a
// second interrupt must not lose.
func (h *Hurry) loadEnded() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.held = true
	h.mu.Unlock()
}

// Now ends the waits left when results are held, and reports whether
// they are (else nothing was measured: the caller may quit at once).
func (h *Hurry) Now() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		return false
	}
	select {
	case <-h.now:
	default:
		close(h.now)
	}
	return true
}

// done is closed by Now; nil (never closed) for a nil Hurry.
func (h *Hurry) done() <-chan struct{} {
	if h == nil {
		return nil
	}
	return h.now
}

// interruptedScrapeCap bounds the wait for the last scrape of an
// interrupted run: the user asked to stop, and the load's results must
// not wait on a hung endpoint.
const interruptedScrapeCap = time.Second

// checkMetrics finds a bad --metrics setting before any load is sent.
func (m *MetricsConfig) check() error {
	seen := map[string]bool{}
	for _, u := range m.URLs {
		c := servermetrics.Config{URL: u, Interval: m.Interval, Timeout: m.Timeout}
		if err := c.Check(); err != nil {
			return err
		}
		if seen[u] {
			// Its figures would count twice in the block's endpoints.
			return setting.Invalid("servermetrics.Config.URL", RedactURL(u), "given twice: each endpoint is scraped once")
		}
		seen[u] = true
	}
	if m.Interval < 0 {
		return setting.Invalid("servermetrics.Config.Interval", m.Interval.String(), "must not be negative")
	}
	return nil
}

// modelOf is the model a REST predict URL names (/v1/models/NAME[...]).
func modelOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	parts := strings.Split(u.Path, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "models" {
			name, _, _ := strings.Cut(parts[i+1], ":")
			return name
		}
	}
	return ""
}

// startMetrics starts a Sampler on each endpoint; nil without any. The
// Samplers' own errors are settings already checked, so none is expected.
func startMetrics(ctx context.Context, cfg Config) (*metricsRun, error) {
	if cfg.Metrics == nil || len(cfg.Metrics.URLs) == 0 {
		return nil, nil
	}
	m := &metricsRun{cfg: *cfg.Metrics, model: cfg.Metrics.Model, interrupted: ctx.Done(), hurry: hurryOf(ctx)}
	if m.model == "" {
		m.model = cfg.GRPC.Model
	}
	if m.model == "" {
		m.model = modelOf(cfg.URL)
	}
	// Not stopped by an interrupt: an interrupted run still ends its steady
	// phase, and its window needs the scrape at that end (Close scrapes
	// once more, bounded by the scrape timeout).
	ctx = context.WithoutCancel(ctx)
	// An https:// endpoint is the model server's, or beside it: it is
	// trusted as the target is (--ca, --insecure-skip-verify, and the
	// client certificate of mutual TLS).
	var client *http.Client
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		client = &http.Client{Transport: tr}
	}
	var header http.Header
	for _, h := range m.cfg.Headers {
		if header == nil {
			header = http.Header{}
		}
		header.Add(h.Key, h.Value)
	}
	for _, u := range m.cfg.URLs {
		s, err := servermetrics.Start(ctx, servermetrics.Config{URL: u, Model: m.model, Interval: m.cfg.Interval, Timeout: m.cfg.Timeout, Client: client, Header: header})
		if err != nil {
			m.close()
			return nil, err
		}
		m.samplers = append(m.samplers, s)
	}
	return m, nil
}

// watch sets the marks of the steady phase's start and the profile
// window's edges as the run reaches them.
func (m *metricsRun) watch(plan *load.Plan, win *window) {
	if m == nil {
		return
	}
	next := plan.SteadyStarted
	plan.SteadyStarted = func() {
		m.mark(servermetrics.MarkSteadyStart)
		if next != nil {
			next()
		}
	}
	if win != nil {
		win.edge = func(open bool) {
			if open {
				m.mark(servermetrics.MarkProfileOpen)
			} else {
				m.mark(servermetrics.MarkProfileClose)
			}
		}
	}
}

// finish takes the last scrapes and puts the server's figures in res,
// with a warning line for each endpoint that failed.
func (m *metricsRun) finish(res *report.Result, origin time.Time, warnings io.Writer) {
	if m == nil {
		return
	}
	res.Server = serverReport(m.close(), res, origin, m.model)
	select {
	case <-m.interrupted:
		// Ctrl-C while the last scrapes were waited for: the load had
		// ended, but the run was interrupted all the same, and the last
		// scrape cut short.
		res.Interrupted = true
	default:
	}
	warnMetrics(warnings, res.Server)
}

// mark sets a mark on every Sampler; it never waits for a scrape.
func (m *metricsRun) mark(name string) {
	if m == nil {
		return
	}
	for _, s := range m.samplers {
		s.Mark(name)
	}
}

// close takes the last scrapes and returns every endpoint's report; it
// returns within about one scrape timeout, the endpoints together, or
// about a second once the run is interrupted (also while it waits), or
// at once on a second interrupt.
func (m *metricsRun) close() []servermetrics.Report {
	if m == nil {
		return nil
	}
	out := make([]servermetrics.Report, len(m.samplers))
	done := make(chan struct{}, len(m.samplers))
	timeout := m.cfg.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	// One timeout in all: a hung scrape under way and the last scrape
	// after it share it (the run has ended; its results wait on this).
	limit := timeout
	short := min(timeout, interruptedScrapeCap)
	select {
	case <-m.interrupted:
		limit = short
	default:
	}
	for i, s := range m.samplers {
		go func() {
			s.CloseBy(limit, m.interrupted, short, m.hurry.done())
			out[i] = redactReport(s.Report(), m.cfg.URLs[i])
			done <- struct{}{}
		}()
	}
	for range m.samplers {
		<-done // Close is bounded
	}
	return out
}

// redactReport hides the credentials of the endpoint's URL raw (its
// password, secret query values) wherever the report says them: its URL
// and its warnings, which quote the failed requests' errors.
func redactReport(rep servermetrics.Report, raw string) servermetrics.Report {
	secrets := urlSecrets(raw)
	if len(secrets) == 0 {
		return rep
	}
	hide := func(msgs []string) {
		for i, msg := range msgs {
			for _, s := range secrets {
				msg = strings.ReplaceAll(msg, s, "redacted")
			}
			msgs[i] = msg
		}
	}
	rep.URL = RedactURL(raw)
	hide(rep.Warnings)
	for _, w := range []*servermetrics.Window{rep.Run, rep.Steady, rep.Profile} {
		if w != nil {
			hide(w.Warnings)
		}
	}
	for i := range rep.Intervals {
		hide(rep.Intervals[i].Warnings)
	}
	return rep
}

// urlSecrets are the credentials RedactURL hides in raw, as they are
// written in it and decoded.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if pw, has := u.User.Password(); has && pw != "" {
		out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	for k, vs := range u.Query() {
		if isSecretHeader(k) || isSecretQueryName(k) {
			for _, v := range vs {
				if v != "" {
					out = append(out, v, url.QueryEscape(v))
				}
			}
		}
	}
	return out
}

// headEndpoint is the endpoint whose request figures head the server
// block: of those that counted requests over the window, the one whose
// count is nearest the client's (another server, or another model's
// series, counts something else), whole windows (both edge scrapes
// answered) before cut ones; else the first with request figures at all;
// -1 when none has any.
func headEndpoint(reps []servermetrics.Report, client int64) int {
	best, bestWhole, bestDiff := -1, false, math.Inf(1)
	first := -1
	for i, rep := range reps {
		w := rep.Steady
		if w == nil {
			w = rep.Run
		}
		if w == nil || (w.Requests == nil && w.Latency == nil) {
			continue
		}
		if first < 0 {
			first = i
		}
		if w.Requests == nil || *w.Requests <= 0 {
			continue
		}
		whole := rep.Steady != nil && !cutShort(rep)
		diff := math.Abs(*w.Requests - float64(client))
		if best < 0 || (whole && !bestWhole) || (whole == bestWhole && diff < bestDiff) {
			best, bestWhole, bestDiff = i, whole, diff
		}
	}
	if best >= 0 {
		return best
	}
	return first
}

// cutShort reports whether a scrape at an edge of rep's steady window
// failed, so that the window is not the steady phase.
func cutShort(rep servermetrics.Report) bool {
	for _, msg := range rep.Warnings {
		if strings.Contains(msg, ": steady window: ") {
			return true
		}
	}
	return false
}

// serverReport turns the endpoints' reports into result.json's "server"
// block, beside the client's figures in res.
func serverReport(reps []servermetrics.Report, res *report.Result, origin time.Time, model string) *report.ServerReport {
	if len(reps) == 0 {
		return nil
	}
	at := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return t.Sub(origin).Seconds()
	}
	sr := &report.ServerReport{Model: model, Endpoints: []report.ServerEndpoint{}}
	headed := false
	head := headEndpoint(reps, res.Requests)
	for i, rep := range reps {
		ep := report.ServerEndpoint{URL: rep.URL, Scrapes: rep.Scrapes, FailedScrapes: rep.FailedScrapes}
		w, name := rep.Steady, "steady"
		if w == nil {
			w, name = rep.Run, "run"
		}
		if w != nil {
			sw := windowOf(name, w, at)
			ep.Steady, ep.Server, ep.Raw = &sw, w.Server, rawOf(w.Raw)
		}
		sr.Warnings = append(sr.Warnings, rep.Warnings...)
		if w != nil {
			for _, msg := range w.Warnings {
				sr.Warnings = append(sr.Warnings, rep.URL+": "+msg)
			}
		}
		sr.Endpoints = append(sr.Endpoints, ep)
		// The endpoint whose count fits the load heads the block; a GPU
		// exporter's figures join it.
		if w == nil {
			continue
		}
		if !headed && i == head {
			headed = true
			gpu := sr.ServerFigures
			sr.ServerWindow = *ep.Steady
			sr.Server, sr.Head = w.Server, rep.URL
			for _, f := range w.Families {
				sr.Families = append(sr.Families, familyOf(f))
			}
			if rep.Profile != nil {
				pw := windowOf("profile", rep.Profile, at)
				sr.Profile = &pw
			}
			sr.Intervals = intervalsOf(rep.Intervals, res, at)
			keepGPU(&sr.ServerFigures, gpu)
			// A window whose edge scrape lagged far is of another span than
			// the client's: their difference is not time outside the server.
			// A negative one is no time: the server's mean exceeds the
			// client's, so they timed different things.
			if out, ok := servermetrics.OutsideMs(res.LatencyOK.Mean, w); ok && res.LatencyOK.Count > 0 && report.LagWithheld(&sr.ServerWindow) == "" &&
				report.SpanWithheld(&sr.ServerWindow, res.Phases.Steady.Start, res.Phases.Steady.End) == "" {
				if out >= 0 {
					sr.OutsideMs = &out
				} else {
					sr.Warnings = append(sr.Warnings, "outside_ms: "+report.NegativeOutsideText(w.Latency.MeanMs, res.LatencyOK.Mean))
				}
			}
			continue
		}
		keepGPU(&sr.ServerFigures, ep.Steady.ServerFigures)
		if !headed && sr.Window == "" {
			sr.Window, sr.StartS, sr.EndS = ep.Steady.Window, ep.Steady.StartS, ep.Steady.EndS
		}
		for _, f := range w.Families {
			sr.Families = append(sr.Families, familyOf(f))
		}
	}
	if sr.Window == "" {
		sr.Window = "steady"
	}
	if sr.Requests == nil && sr.LatencyMs == nil {
		if msg := wrongModel(reps, model); msg != "" {
			sr.Warnings = append(sr.Warnings, msg)
		}
	}
	sr.Warnings = countRepeats(sr.Warnings)
	return sr
}

// wrongModel says, when the endpoints gave no request figures of model,
// which models a known request family was exported for instead: the
// model label (--model, or the URL's model) is then wrong.
func wrongModel(reps []servermetrics.Report, model string) string {
	best, order := "", -1
	var models []string
	for _, rep := range reps {
		for family, ms := range rep.OtherModels {
			o := servermetrics.KnownOrder(family)
			if servermetrics.CountsRequests(family) && (order < 0 || o < order) {
				best, order, models = family, o, ms
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("%s is exported for model(s) %s, not %s (--model / the URL's model)", best, strings.Join(models, ", "), model)
}

// countRepeats says each message once, in the order first said, with how
// many times it was said: a dead endpoint fails every scrape alike, and
// an hour's run would list 3,600 copies.
func countRepeats(msgs []string) []string {
	counts := map[string]int{}
	var order []string
	for _, m := range msgs {
		if counts[m] == 0 {
			order = append(order, m)
		}
		counts[m]++
	}
	for i, m := range order {
		if n := counts[m]; n > 1 {
			order[i] = fmt.Sprintf("%s (%d times)", m, n)
		}
	}
	return order
}

// keepGPU fills f's GPU figures that are nil from other's.
func keepGPU(f *report.ServerFigures, other report.ServerFigures) {
	for _, p := range []struct{ dst, src **float64 }{
		{&f.GPUUtilPct, &other.GPUUtilPct}, {&f.GPUMemUsedBytes, &other.GPUMemUsedBytes}, {&f.GPUPowerW, &other.GPUPowerW},
	} {
		if *p.dst == nil {
			*p.dst = *p.src
		}
	}
}

func windowOf(name string, w *servermetrics.Window, at func(time.Time) float64) report.ServerWindow {
	return report.ServerWindow{
		Window: name, StartS: at(w.Start), EndS: at(w.End), StartLagMs: w.StartLagMs, EndLagMs: w.EndLagMs,
		ServerFigures: report.ServerFigures{
			Requests: w.Requests, LatencyMs: latencyOf(w.Latency), QueueMs: latencyOf(w.Queue), ComputeMs: latencyOf(w.Compute),
			BatchSizeMean: w.BatchSizeMean, GPUUtilPct: w.GPUUtilPct, GPUMemUsedBytes: w.GPUMemUsedBytes, GPUPowerW: w.GPUPowerW,
		},
	}
}

func latencyOf(l *servermetrics.Latency) *report.ServerLatency {
	if l == nil || l.Count == 0 {
		// Nothing timed: a mean of 0 would read as a 0 ms server.
		return nil
	}
	return &report.ServerLatency{Family: l.Family, Count: l.Count, Mean: l.MeanMs, P50: quantileOf(l.P50), P90: quantileOf(l.P90), P99: quantileOf(l.P99)}
}

func quantileOf(q *servermetrics.Quantile) *report.ServerQuantile {
	if q == nil {
		return nil
	}
	return &report.ServerQuantile{Ms: q.Ms, BucketLowMs: q.BucketLowMs, BucketHighMs: q.BucketHighMs}
}

func familyOf(f servermetrics.Family) report.ServerFamily {
	out := report.ServerFamily{Name: f.Name, What: f.What, Unit: f.Unit, Series: f.Series, Count: f.Count,
		P50: quantileOf(f.P50), P90: quantileOf(f.P90), P99: quantileOf(f.P99)}
	switch f.What {
	case "requests", "inferences", "executions", "other_count":
		// A counter's figure is its count: a mean of 0 would be noise.
	default:
		if f.Count == 0 {
			break // nothing observed: no mean
		}
		mean := f.Mean
		out.Mean = &mean
	}
	return out
}

func rawOf(raw []servermetrics.RawChange) []report.ServerRaw {
	var out []report.ServerRaw
	for _, r := range raw {
		out = append(out, report.ServerRaw{Name: r.Name, Type: string(r.Type), Labels: r.Labels,
			Increase: r.Increase, Count: r.Count, Sum: r.Sum, Last: r.Last})
	}
	return out
}

// intervalsOf is the server's intervals beside the client's figures. The
// client keeps its series per second of completion: an interval's client
// requests are each second's apportioned by how much of it the interval
// covers (a sub-second interval at a mark gets its part, not a whole
// second's, so the intervals add up to what the client sent); its client
// latency is of the seconds it mostly covers (scrapes land a little after
// each whole second: 1.004-2.004 s is second 1, not seconds 1 and 2), or
// of the second around its middle when it covers none so.
func intervalsOf(ivs []servermetrics.Window, res *report.Result, at func(time.Time) float64) []report.ServerInterval {
	hists := map[int]string{}
	for _, sh := range res.SeriesHistograms {
		hists[sh.Second] = sh.Histogram
	}
	var out []report.ServerInterval
	for _, w := range ivs {
		iv := report.ServerInterval{StartS: at(w.Start), EndS: at(w.End), Requests: w.Requests, Raw: rawOf(w.Raw)}
		if w.Latency != nil && w.Latency.Count > 0 {
			mean := w.Latency.MeanMs
			iv.MeanMs, iv.P99 = &mean, quantileOf(w.Latency.P99)
		}
		var client *hdrhistogram.Histogram
		covered := map[int]bool{}
		for sec := int(math.Floor(iv.StartS)); float64(sec) < iv.EndS; sec++ {
			if math.Min(iv.EndS, float64(sec+1))-math.Max(iv.StartS, float64(sec)) >= 0.5 {
				covered[sec] = true
			}
		}
		if len(covered) == 0 {
			covered[int(math.Floor((iv.StartS+iv.EndS)/2))] = true
		}
		share := 0.0
		for _, p := range res.Series {
			overlap := math.Min(iv.EndS, float64(p.Second+1)) - math.Max(iv.StartS, float64(p.Second))
			if overlap > 0 {
				share += float64(p.Requests) * math.Min(overlap, 1)
			}
			if !covered[p.Second] {
				continue // not a second the interval covers
			}
			enc, ok := hists[p.Second]
			if !ok {
				continue
			}
			h, err := report.DecodeHistogram(enc)
			if err != nil {
				continue
			}
			if client == nil {
				client = h
			} else {
				client.Merge(h)
			}
		}
		// Rounded down: intervals side by side never add up to more than
		// the client sent.
		iv.ClientRequests = int64(math.Floor(share + 1e-9))
		// An interval the client completed no request in has no client
		// figures: the seconds it touches are its neighbours'.
		if client != nil && client.TotalCount() > 0 && iv.ClientRequests > 0 {
			p99 := float64(client.ValueAtQuantile(99)) / 1e3
			mean := client.Mean() / 1e3
			iv.ClientP99Ms, iv.ClientMeanMs = &p99, &mean
		}
		out = append(out, iv)
	}
	return out
}

// warnMetrics writes a line for each endpoint whose scrapes failed: the
// load's results stand without them.
func warnMetrics(w io.Writer, sr *report.ServerReport) {
	if w == nil || sr == nil {
		return
	}
	for _, ep := range sr.Endpoints {
		if ep.FailedScrapes == 0 {
			continue
		}
		first := ""
		for _, msg := range sr.Warnings {
			if strings.HasPrefix(msg, ep.URL) {
				first = " (first: " + msg + ")"
				break
			}
		}
		fmt.Fprintf(w, "warning: metrics %s: %d of %d scrapes failed%s; the load's results stand\n", ep.URL, ep.FailedScrapes, ep.Scrapes, first)
	}
}
