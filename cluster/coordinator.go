package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/servermetrics"
)

// Config is a coordinated run: the run as one machine would make it, and
// how many workers share it.
type Config struct {
	// Run is the whole run. Its load (rate, concurrency, requests) is the
	// total the workers send together; its Profile window is opened by
	// the coordinator. IntervalLog, when set, gets the merged interval
	// log once the workers' results are in.
	Run     bench.Config
	Workers int
	// Listener is where workers join (the coordinator serves on it and
	// closes it).
	Listener net.Listener
	// Token is the secret every worker must present; required.
	Token string
	// JoinTimeout bounds the wait for Workers to join (DefaultJoinTimeout
	// when 0). Those that joined by then run the whole load between them
	// (each a larger share); the rest are reported as never joined.
	JoinTimeout time.Duration
	// MaxClockOffset is the largest clock offset a worker may have
	// (DefaultMaxClockOffset when 0); a worker further off is refused, or,
	// with WarnClockOffset, warned about and let in.
	MaxClockOffset  time.Duration
	WarnClockOffset bool
	// StartDelay is the time from the last join to the common start
	// (DefaultStartDelay when 0): the join replies must reach every worker
	// before it.
	StartDelay time.Duration
	// HeartbeatEvery is how often workers report while they run, and
	// LostAfter how long a silent worker may stay silent before it counts
	// as lost (defaults when 0).
	HeartbeatEvery time.Duration
	LostAfter      time.Duration
	// StartTolerance is how long after the common start a worker may
	// begin (beyond its clock's uncertainty) before it counts as late
	// (DefaultStartTolerance when 0): --worker-start-tolerance.
	StartTolerance time.Duration
	// Log gets one line per event of the workers (joined, lost, done);
	// nil for none.
	Log io.Writer
	// Progress gets a line every ProgressEvery (10 s when 0) while a run
	// lasts: the steady requests and errors the workers have reported in
	// their heartbeats; nil for none.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// MaxWorkers is the most workers a run may have: a Kubernetes Indexed
// Job's limit on completions, far beyond what one coordinator serves.
const MaxWorkers = 100000

// MaxWorkersWhy says where MaxWorkers comes from, for messages.
const MaxWorkersWhy = " (a Kubernetes Indexed Job's limit)"

// Defaults of Config.
const (
	DefaultJoinTimeout    = 2 * time.Minute
	DefaultMaxClockOffset = time.Second
	DefaultStartDelay     = 2 * time.Second
	DefaultHeartbeat      = 500 * time.Millisecond
	DefaultLostAfter      = 10 * time.Second
	// DefaultStartTolerance is a scheduler's wake-up and a join
	// reply's last hop on a loaded machine, with room to spare: a
	// worker later than that shifts the combined load visibly.
	DefaultStartTolerance = 250 * time.Millisecond
	// MinLostAfter is the shortest LostAfter with the default heartbeat:
	// two heartbeats, so that one late beat does not make a healthy
	// worker lost.
	MinLostAfter = 2 * DefaultHeartbeat
)

// WorkersError says that the result lacks workers asked for: some did
// not join, were refused, were lost mid-run or failed. The result holds
// what the others measured.
type WorkersError struct {
	Missing []report.WorkerReport
}

func (e *WorkersError) Error() string {
	// Consecutive workers missing for the same reason make one part
	// ("999 workers never joined: 2..1000"): a run that asked for many
	// more than came stays one line. A late worker is not missing (its
	// requests are in the result): it is named apart.
	var lacking, late []report.WorkerReport
	for _, w := range e.Missing {
		if w.Status == report.WorkerLate {
			late = append(late, w)
		} else {
			lacking = append(lacking, w)
		}
	}
	var out []string
	if len(lacking) > 0 {
		out = append(out, "the result lacks "+workerParts(lacking))
	}
	if len(late) > 0 {
		out = append(out, "the result has "+workerParts(late)+" on a span of its own")
	}
	return strings.Join(out, "; ")
}

// workerParts names workers, consecutive ones of one status and error
// together.
func workerParts(ws []report.WorkerReport) string {
	var parts []string
	for i := 0; i < len(ws); {
		w := ws[i]
		j := i + 1
		for j < len(ws) && ws[j].Status == w.Status && ws[j].Error == w.Error && ws[j].Index == ws[j-1].Index+1 {
			j++
		}
		status := strings.ReplaceAll(w.Status, "_", " ")
		var part string
		switch {
		case j-i == 1 && w.Name != "":
			part = fmt.Sprintf("worker %d (%s) %s", w.Index, w.Name, status)
		case j-i == 1:
			part = fmt.Sprintf("worker %d %s", w.Index, status)
		default:
			part = fmt.Sprintf("%d workers %s: %d..%d", j-i, status, w.Index, ws[j-1].Index)
		}
		if w.Error != "" {
			part += " (" + w.Error + ")"
		}
		parts = append(parts, part)
		i = j
	}
	return strings.Join(parts, ", ")
}

// SweepStop is the short reason a sweep gives for ending at the step
// that lacks these workers: "worker 2 (pod-1) lost".
func (e *WorkersError) SweepStop() string {
	var parts []string
	for _, w := range e.Missing {
		part := fmt.Sprintf("worker %d", w.Index)
		if w.Name != "" {
			part += " (" + w.Name + ")"
		}
		parts = append(parts, part+" "+strings.ReplaceAll(w.Status, "_", " "))
	}
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("and %d more", len(parts)-3))
	}
	return strings.Join(parts, ", ")
}

// worker is one worker as the coordinator tracks it.
type worker struct {
	rep         report.WorkerReport
	offset      time.Duration
	uncertainty time.Duration
	lastSeen    time.Time
	reply       *joinReply
	result      *report.Result
	events      []profile.ClientEvent
	trunc       bool
	seconds     workerSeconds       // its finished seconds this round, as it sent them
	done        bool                // sent its result, or failed, or lost (this round)
	ready       bool                // made its preflight call this round and waits for the start
	gone        bool                // lost in an earlier round: no later round waits for it
	released    bool                // told there is no further round
	toldStop    bool                // a heartbeat reply told it to stop: it asks for no next round
	base        report.WorkerReport // what stays from round to round (name, clock)
}

type coordinator struct {
	cfg   Config
	spec  RunSpec // the run before shares
	count int     // payloads in the set

	mu       sync.Mutex
	workers  []*worker     // joined, in order of joining
	refused  []*worker     // joined with a clock too far off
	full     chan struct{} // closed when cfg.Workers have joined
	fullOnce sync.Once
	started  chan struct{} // closed when the first round's replies are ready (or the run gave up)
	startErr error
	window   *WindowSpec // the profile window of this round; nil for none
	// keepSeconds: this round writes an interval log, so every worker's
	// seconds are kept to the end; without one only until its result
	// (they serve then for a worker lost before it).
	keepSeconds bool
	stop        bool          // interrupted: workers are told to stop
	stopAt      time.Time     // when
	changed     chan struct{} // a result arrived
	closed      bool          // no more joins: the workers are known
	round       int           // the round under way, from 1
	startAt     time.Time     // its common start; zero until every worker is ready
	ready       chan struct{} // closed when the round's common start is set
	next        chan struct{} // closed when round+1 is ready, or the session is over
	over        bool          // no round follows: workers waiting for one are told so
	srv         *http.Server
	served      chan struct{}
}

// Coordinate runs cfg: it waits for the workers, runs them, and returns
// the merged result. The result comes back also with an error (a
// *WorkersError when workers are missing from it) whenever some worker
// measured something; an interrupted ctx stops every worker and returns
// what they measured.
func Coordinate(ctx context.Context, cfg Config) (*report.Result, error) {
	s, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(ctx, cfg.Run)
}

// Session is a coordinator whose workers have joined: it runs one run
// after another on them (the steps of a sweep), each with a common start
// and its own merged result.
type Session struct{ c *coordinator }

// Open serves cfg.Listener and waits for the workers to join (bounded by
// cfg.JoinTimeout). cfg.Run is checked and its files read; each Run may
// change the load and the profile window, not the files.
func Open(ctx context.Context, cfg Config) (*Session, error) {
	c, err := newCoordinator(cfg)
	if err != nil {
		cfg.Listener.Close()
		return nil, &bench.InputError{Err: err}
	}
	c.srv = &http.Server{Handler: c.handler(), ReadHeaderTimeout: 10 * time.Second}
	c.served = make(chan struct{})
	go func() { defer close(c.served); _ = c.srv.Serve(cfg.Listener) }()
	c.logf("waiting for %s on %s (join timeout %v)", workersCount(cfg.Workers), cfg.Listener.Addr(), c.cfg.JoinTimeout)
	if err := c.waitForJoins(ctx); err != nil {
		c.shutdown()
		return nil, err
	}
	return &Session{c: c}, nil
}

// Run runs one round: run's load shared by the workers still there,
// from a common start, merged.
func (s *Session) Run(ctx context.Context, run bench.Config) (*report.Result, error) {
	c := s.c
	metrics, err := bench.StartRemoteMetrics(ctx, run)
	if err != nil {
		return nil, err
	}
	if err := c.startRound(ctx, run); err != nil {
		metrics.Stop()
		return nil, err
	}
	var win *coordWindow
	if run.Profile != nil {
		win = c.openWindow(ctx, run)
	}
	stopMarks := c.markEdges(metrics, run)
	c.waitForResults(ctx)
	stopMarks()
	// The steady phases have ended: every worker sent its result.
	metrics.Mark(servermetrics.MarkSteadyEnd)
	res, err := c.merge(run, win)
	if res != nil && run.IntervalLog != nil {
		out, lerr := run.IntervalLog()
		if lerr == nil {
			lerr = c.writeIntervalLog(out, res.StartedAt)
		}
		err = errors.Join(err, lerr)
	}
	if res != nil {
		metrics.Finish(res, res.StartedAt, run.Warnings)
	} else {
		metrics.Stop()
	}
	return res, err
}

// StopWorkers tells the workers of the round under way to stop, as an
// interrupt does, and waits (bound at most) until every one still
// running has heard it in a heartbeat's reply: what a coordinator about
// to quit does, so that its workers stop at once rather than when they
// find it silent (--worker-lost-after).
func (s *Session) StopWorkers(bound time.Duration) {
	c := s.c
	c.mu.Lock()
	if !c.stop {
		c.stop, c.stopAt = true, time.Now()
	}
	c.mu.Unlock()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		told := true
		for _, wk := range c.workers {
			if wk.reply != nil && !wk.done && !wk.gone && !wk.toldStop {
				told = false
			}
		}
		c.mu.Unlock()
		if told {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// markEdges marks the steady phase's start and the window's edges on the
// server's metrics at the times the workers were given; stop cancels the
// marks not yet made.
func (c *coordinator) markEdges(m *bench.RemoteMetrics, run bench.Config) (stop func()) {
	if m == nil {
		return func() {}
	}
	c.mu.Lock()
	start := c.startAt
	win := c.window
	c.mu.Unlock()
	at := map[string]time.Time{servermetrics.MarkSteadyStart: start.Add(run.Plan.WarmupDuration)}
	if win != nil {
		at[servermetrics.MarkProfileOpen] = win.Open
		at[servermetrics.MarkProfileClose] = win.Open.Add(win.Length)
	}
	var timers []*time.Timer
	for name, t := range at {
		timers = append(timers, time.AfterFunc(time.Until(t), func() { m.Mark(name) }))
	}
	return func() {
		for _, t := range timers {
			t.Stop()
		}
	}
}

// Close tells the workers there is no further round (they exit) and
// stops serving; a worker that does not ask within a moment is not
// waited for.
func (s *Session) Close() {
	c := s.c
	c.mu.Lock()
	c.over = true
	close(c.next)
	c.mu.Unlock()
	// Each worker asks for the next round after its result: wait (a
	// moment at most) until every one still there has been told there is
	// none, so that none finds the port closed and takes the coordinator
	// for lost.
	bound := time.NewTimer(nextRoundWait + time.Second)
	defer bound.Stop()
	for !c.allReleased() {
		select {
		case <-c.changed:
		case <-bound.C:
			c.shutdown()
			return
		}
	}
	c.shutdown()
}

func (c *coordinator) allReleased() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, wk := range c.workers {
		if !wk.gone && !wk.released && !wk.toldStop && wk.reply != nil && wk.done && wk.rep.Status != report.WorkerFailed {
			return false
		}
	}
	return true
}

func (c *coordinator) shutdown() {
	// Replies in flight (a late join's refusal, the last "no more
	// rounds") get a moment.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c.srv.Shutdown(sctx) != nil {
		c.srv.Close()
	}
	<-c.served
}

// CheckShares reports why run cannot be shared by workers (too many or
// too few of them for its load, settings that need one machine), before
// any file is read: what `loadprof k8s` checks before it prints.
func CheckShares(run bench.Config, workers int) error {
	p := run.Plan
	switch {
	case workers < 1:
		return setting.Invalid("cluster.Config.Workers", fmt.Sprint(workers), "must be at least 1")
	case workers > MaxWorkers:
		return setting.Invalid("cluster.Config.Workers", fmt.Sprint(workers), fmt.Sprintf("must be at most %d%s", MaxWorkers, MaxWorkersWhy))
	case p.Concurrency > 0 && p.Concurrency < workers:
		return setting.Errorf("cluster.Config.Workers", "load.Plan.Concurrency %d with cluster.Config.Workers %d: every worker needs at least one request in flight", p.Concurrency, workers)
	case p.Requests > 0 && p.Duration == 0 && p.Requests < int64(workers):
		return setting.Errorf("cluster.Config.Workers", "load.Plan.Requests %d with cluster.Config.Workers %d: every worker needs at least one request", p.Requests, workers)
	case run.SLO != nil && run.SLO.HasLLM() && !isOpenAI(run):
		// Each worker would refuse it once every one has joined.
		return setting.Errorf("bench.Config.SLO", "bench.Config.SLO %s: only an OpenAI-compatible target (a URL ending in /v1/completions or /v1/chat/completions) has stream figures; give the latency terms (p99<50ms) for this one",
			strings.Join(run.SLO.LLMTermNames(), ","))
	case run.Profile != nil && p.WarmupRequests > 0:
		// The window opens at a time every worker knows in advance; a
		// warm-up counted in requests ends at a different time on each.
		return setting.Errorf("load.Plan.WarmupRequests", "load.Plan.WarmupRequests with cluster.Config.Workers and bench.Config.Profile: give the warm-up as a duration, so that the window opens at one time for every worker")
	}
	return nil
}

func newCoordinator(cfg Config) (*coordinator, error) {
	if cfg.Token == "" {
		return nil, setting.Errorf("cluster.Config.Token", "cluster.Config.Token: a coordinated run needs a shared token, so that no stray process can join")
	}
	if err := CheckShares(cfg.Run, cfg.Workers); err != nil {
		return nil, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.JoinTimeout, DefaultJoinTimeout)
	def(&cfg.MaxClockOffset, DefaultMaxClockOffset)
	def(&cfg.StartDelay, DefaultStartDelay)
	def(&cfg.HeartbeatEvery, DefaultHeartbeat)
	def(&cfg.LostAfter, DefaultLostAfter)
	def(&cfg.StartTolerance, DefaultStartTolerance)
	if cfg.LostAfter < 2*cfg.HeartbeatEvery {
		return nil, setting.Invalid("cluster.Config.LostAfter", cfg.LostAfter.String(), fmt.Sprintf("must be at least %v (twice the workers' heartbeat interval %v; a shorter one counts healthy workers as lost)", 2*cfg.HeartbeatEvery, cfg.HeartbeatEvery))
	}
	spec, count, err := specOf(cfg.Run)
	if err != nil {
		return nil, err
	}
	return &coordinator{cfg: cfg, spec: spec, count: count, full: make(chan struct{}), started: make(chan struct{}), changed: make(chan struct{}, 1), next: make(chan struct{})}, nil
}

// specOf reads every input file of run into a RunSpec, and checks the
// payloads here, before any worker is waited for.
func specOf(run bench.Config) (RunSpec, int, error) {
	limit := run.MaxPayloadBytes
	if limit <= 0 {
		limit = payloads.DefaultMaxBytes
	}
	data, err := ReadData(run.DataPath, run.Stdin, limit)
	if err != nil {
		return RunSpec{}, 0, err
	}
	var stdin io.Reader
	if data.Stdin {
		stdin = bytes.NewReader(data.Files[0].Content)
	}
	url := run.URL
	if !isOpenAI(run) {
		url = ""
	}
	set, err := LoadPayloads(url, run.DataPath, payloads.Options{Stdin: stdin, MaxBytes: run.MaxPayloadBytes})
	if err != nil {
		return RunSpec{}, 0, err
	}
	spec := RunSpec{
		URL: run.URL, GRPC: run.GRPC, Headers: run.Headers, Data: data, MaxPayloadBytes: run.MaxPayloadBytes,
		Plan: planSpecOf(run.Plan), Timeout: run.Timeout, MaxResponseBytes: run.MaxResponseBytes,
		RESTEngine: run.RESTEngine, V2Binary: run.V2Binary, Settings: run.Settings, SLO: llmSLOSpec(run),
		TLS: TLSSpec{Enabled: run.TLS.Enabled, InsecureSkipVerify: run.TLS.InsecureSkipVerify},
	}
	for _, f := range []struct {
		name, path string
		dst        **File
	}{{"bench.Config.TLS.CA", run.TLS.CA, &spec.TLS.CA}, {"bench.Config.TLS.Cert", run.TLS.Cert, &spec.TLS.Cert}, {"bench.Config.TLS.Key", run.TLS.Key, &spec.TLS.Key}} {
		if *f.dst, err = readFile(f.name, f.path); err != nil {
			return RunSpec{}, 0, err
		}
	}
	return spec, set.Len(), nil
}

// isOpenAI reports whether run's target is an OpenAI-compatible route.
func isOpenAI(run bench.Config) bool {
	if run.GRPC.Addr != "" {
		return false
	}
	_, ok := openAIEndpoint(run.URL)
	return ok
}

// llmSLOSpec is the objective the workers judge their streams by: --slo
// as written when it has LLM terms, else none (its latency and error terms
// judge the merged result of a sweep's step, on the coordinator).
func llmSLOSpec(run bench.Config) string {
	if run.SLO == nil || !run.SLO.HasLLM() {
		return ""
	}
	return run.SLOSpec
}

// workersCount is "1 worker", "2 workers".
func workersCount(n int) string {
	if n == 1 {
		return "1 worker"
	}
	return fmt.Sprintf("%d workers", n)
}

func (c *coordinator) logf(format string, args ...any) {
	if c.cfg.Log != nil {
		fmt.Fprintf(c.cfg.Log, "loadprof coordinator: "+format+"\n", args...)
	}
}

func (c *coordinator) handler() http.Handler {
	mux := http.NewServeMux()
	refused := func(r *http.Request) {
		c.logf("refused a call to %s from %s: wrong or missing token", r.URL.Path, r.RemoteAddr)
	}
	auth := func(h http.HandlerFunc) http.HandlerFunc { return guarded(http.MethodPost, c.cfg.Token, refused, h) }
	mux.HandleFunc(pathClock, auth(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, clockReply{NowNs: time.Now().UnixNano()})
	}))
	mux.HandleFunc(pathJoin, auth(c.join))
	mux.HandleFunc(pathReady, auth(c.readyCall))
	mux.HandleFunc(pathHeartbeat, auth(c.heartbeat))
	mux.HandleFunc(pathResult, auth(c.result))
	mux.HandleFunc(pathNext, auth(c.nextRound))
	return mux
}

// decode reads a worker's message, of limit bytes at most (see
// maxSmallMessage, maxHeartbeat, maxMessage): a body beyond it is refused
// with 413 before it is held in memory.
func decode(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "message to %s larger than %d bytes", r.URL.Path, limit)
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad message: %v", err)
		return false
	}
	return true
}

// MaxWorkerName bounds a worker's name in bytes: a DNS name's length,
// which a pod's host name is.
const MaxWorkerName = 253

func (c *coordinator) join(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if !decode(w, r, &req, maxSmallMessage) {
		return
	}
	if len(req.Name) > MaxWorkerName {
		writeError(w, http.StatusBadRequest, "worker name of %d bytes: at most %d (a DNS name's length)", len(req.Name), MaxWorkerName)
		return
	}
	if req.Protocol != ProtocolVersion {
		writeError(w, http.StatusConflict, "protocol %d; this coordinator speaks %d (use the same loadprof on every machine)", req.Protocol, ProtocolVersion)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	wk := &worker{offset: time.Duration(req.OffsetNs), uncertainty: time.Duration(req.UncertaintyNs).Abs(), rep: report.WorkerReport{
		Name: req.Name, Host: host,
		ClockOffsetMs: float64(req.OffsetNs) / 1e6, ClockUncertaintyMs: float64(req.UncertaintyNs) / 1e6,
	}}
	off := time.Duration(req.OffsetNs)
	c.mu.Lock()
	if c.closed || len(c.workers) >= c.cfg.Workers {
		c.mu.Unlock()
		writeError(w, http.StatusConflict, "the run has all the workers it waits for, or has started without this one (after --join-timeout)")
		return
	}
	if off.Abs() > c.cfg.MaxClockOffset {
		msg := fmt.Sprintf("its clock is %v off the coordinator's (±%v), more than --max-clock-offset %v", off.Round(time.Microsecond), time.Duration(req.UncertaintyNs).Round(time.Microsecond), c.cfg.MaxClockOffset)
		if !c.cfg.WarnClockOffset {
			wk.rep.Status, wk.rep.Error = report.WorkerRefused, msg
			c.refused = append(c.refused, wk)
			c.mu.Unlock()
			c.logf("refused worker %q from %s: %s", req.Name, host, msg)
			writeError(w, http.StatusConflict, "refused: %s", msg)
			return
		}
		c.logf("warning: worker %q from %s: %s", req.Name, host, msg)
	}
	c.workers = append(c.workers, wk)
	wk.rep.Index = len(c.workers)
	wk.base = wk.rep
	n, joined := len(c.workers), wk.base
	if n == c.cfg.Workers {
		c.fullOnce.Do(func() { close(c.full) })
	}
	c.mu.Unlock()
	c.logf("worker %d of %d joined: %q from %s, clock offset %+.3f ms (±%.3f ms)", n, c.cfg.Workers, req.Name, host, joined.ClockOffsetMs, joined.ClockUncertaintyMs)

	select {
	case <-c.started:
	case <-r.Context().Done():
		return // the worker went away; it is found lost after the start
	}
	c.mu.Lock()
	reply, err := wk.reply, c.startErr
	c.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%s: %v", StoppedBeforeStart, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// StoppedBeforeStart is what a worker held at join is told when the
// coordinator gives up before the run (interrupted, nobody else came).
const StoppedBeforeStart = "the coordinator stopped before the run began"

func (c *coordinator) joined() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.workers)
}

// waitForJoins waits until every worker has joined or the join timeout.
// The joined ones are held until the first round starts.
func (c *coordinator) waitForJoins(ctx context.Context) error {
	timer := time.NewTimer(c.cfg.JoinTimeout)
	defer timer.Stop()
	var why error
	select {
	case <-c.full:
	case <-timer.C:
	case <-ctx.Done():
		why = fmt.Errorf("interrupted before every worker joined (%s)", workersCount(c.joined()))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if why == nil && len(c.workers) == 0 {
		why = &bench.TargetError{Err: fmt.Errorf("no worker joined within --join-timeout %v", c.cfg.JoinTimeout)}
	}
	if why != nil {
		c.startErr = why
		close(c.started)
		return why
	}
	if k := len(c.workers); k < c.cfg.Workers {
		c.logf("warning: %d of %s joined within %v; they share the whole load", k, workersCount(c.cfg.Workers), c.cfg.JoinTimeout)
	}
	c.closed = true // later joins are refused
	return nil
}

// startRound gives every worker still there its share of run and
// releases them (the held joins for the first round, the workers waiting
// for the next one after it); each makes its checks and its preflight
// call and says it is ready. The common start is set StartDelay after the
// last is ready, so that a slow preflight (an LLM's whole answer) makes
// no worker late; a worker not ready within readyBound is not waited for
// (it begins late). An interrupt ends the wait.
func (c *coordinator) startRound(ctx context.Context, run bench.Config) error {
	plan := planSpecOf(run.Plan)
	c.mu.Lock()
	var alive []*worker
	for _, wk := range c.workers {
		if !wk.gone {
			alive = append(alive, wk)
		}
	}
	k := len(alive)
	switch {
	case k == 0:
		c.mu.Unlock()
		return &bench.TargetError{Err: errors.New("no worker is left to run on")}
	case plan.Concurrency > 0 && plan.Concurrency < k:
		c.mu.Unlock()
		return &bench.InputError{Err: setting.Errorf("load.Plan.Concurrency", "load.Plan.Concurrency %d over %d workers: every worker needs at least one request in flight", plan.Concurrency, k)}
	}
	c.window = nil
	var length time.Duration
	if p := run.Profile; p != nil {
		length = p.Options.Duration
		if length <= 0 {
			length = profile.DefaultDuration
		}
	}
	c.round++
	c.startAt = time.Time{}
	c.ready = make(chan struct{})
	c.keepSeconds = run.IntervalLog != nil
	released := time.Now()
	for i, wk := range alive {
		spec := c.spec
		spec.Plan = shareOf(plan, i, k)
		spec.PayloadOffset = i * c.count / k
		if run.Profile != nil {
			spec.Window = &WindowSpec{Length: length} // it opens at a time given with the start
		}
		spec.SLO = llmSLOSpec(run)
		spec.Settings = shareSettings(run.Settings, spec.Plan, i+1, k)
		wk.reply = &joinReply{Round: c.round, Worker: wk.base.Index, Of: k, Spec: spec, HeartbeatEvery: c.cfg.HeartbeatEvery, LostAfter: c.cfg.LostAfter}
		wk.rep = wk.base
		wk.rep.Share = spec.Plan.Rate + float64(spec.Plan.Concurrency)
		wk.result, wk.events, wk.trunc, wk.done, wk.ready = nil, nil, false, false, false
		wk.seconds = workerSeconds{}
		// Silence counts from now: the reply is on its way.
		wk.lastSeen = released
	}
	if c.round == 1 {
		close(c.started)
	} else {
		close(c.next)
		c.next = make(chan struct{})
	}
	c.mu.Unlock()

	waited := c.awaitReady(ctx, readyBound(run, c.cfg.LostAfter))

	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now().Add(c.cfg.StartDelay)
	if run.Profile != nil {
		c.window = &WindowSpec{Open: start.Add(run.Plan.WarmupDuration + run.Profile.Delay), Length: length}
	}
	c.startAt = start
	var notReady []string
	for _, wk := range alive {
		if !wk.ready && !wk.done {
			notReady = append(notReady, fmt.Sprint(wk.base.Index))
		}
	}
	close(c.ready)
	if len(notReady) > 0 && ctx.Err() == nil {
		c.logf("warning: worker %s not ready after %v (its preflight call has not ended): the others start without it", strings.Join(notReady, ", "), waited.Round(time.Millisecond))
	}
	c.logf("%s ready after %v; start at %s", workersCount(k), waited.Round(time.Millisecond), start.UTC().Format("15:04:05.000"))
	return nil
}

// readyBound is how long a round's start waits for a worker's checks and
// preflight call: the preflight's tries (each bounded by the request
// timeout) and a worker's silence; a run without a timeout waits as long
// as for a join.
func readyBound(run bench.Config, lostAfter time.Duration) time.Duration {
	if run.Timeout <= 0 {
		return DefaultJoinTimeout
	}
	const preflightTries = 3 // bench's: a dropped connection is tried again
	return preflightTries*run.Timeout + lostAfter
}

// awaitReady waits until every worker of the round has said it is ready,
// has failed (its result came), or has been silent for LostAfter, at most
// bound, or until ctx is done; it returns how long it waited.
func (c *coordinator) awaitReady(ctx context.Context, bound time.Duration) time.Duration {
	began := time.Now()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	tick := time.NewTicker(c.cfg.HeartbeatEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		c.mu.Lock()
		pending := 0
		for _, wk := range c.workers {
			if !wk.gone && !wk.done && !wk.ready && now.Sub(wk.lastSeen) <= c.cfg.LostAfter {
				pending++
			}
		}
		c.mu.Unlock()
		if pending == 0 {
			return time.Since(began)
		}
		select {
		case <-c.changed:
		case <-tick.C:
		case <-timer.C:
			return time.Since(began)
		case <-ctx.Done():
			return time.Since(began)
		}
	}
}

// readyCall takes a worker's word that it is ready for the round and
// answers with the common start once it is set (held for nextRoundWait
// at most: the worker asks again).
func (c *coordinator) readyCall(w http.ResponseWriter, r *http.Request) {
	var req readyRequest
	if !decode(w, r, &req, maxSmallMessage) {
		return
	}
	c.mu.Lock()
	wk := c.find(req.Worker)
	if wk == nil || wk.reply == nil || req.Round != c.round {
		c.mu.Unlock()
		writeError(w, http.StatusNotFound, "no worker %d in round %d of this run", req.Worker, req.Round)
		return
	}
	wk.ready = true
	wk.lastSeen = time.Now()
	ready := c.ready
	c.mu.Unlock()
	c.signal()
	held := time.NewTimer(nextRoundWait)
	defer held.Stop()
	select {
	case <-ready:
	case <-held.C:
		writeJSON(w, http.StatusOK, readyReply{})
		return
	case <-r.Context().Done():
		return
	}
	c.mu.Lock()
	reply := readyReply{StartAt: c.startAt}
	if c.window != nil {
		reply.WindowOpen = c.window.Open
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, reply)
}

// shareOf is worker i's part of plan among n workers: the rate or
// concurrency, the request counts and the in-flight bound split so that
// they add up to the whole; the warm-up and steady durations are the
// same for all.
func shareOf(p PlanSpec, i, n int) PlanSpec {
	s := p
	s.Rate = p.Rate / float64(n)
	s.Concurrency = int(share(int64(p.Concurrency), i, n))
	s.Requests = share(p.Requests, i, n)
	s.WarmupRequests = share(p.WarmupRequests, i, n)
	if p.MaxInflight > 0 {
		s.MaxInflight = max(1, int(share(int64(p.MaxInflight), i, n)))
	}
	return s
}

// shareSettings is the settings a worker's own result records: the
// run's, with its share in place of the whole.
func shareSettings(all map[string]any, p PlanSpec, index, of int) map[string]any {
	out := make(map[string]any, len(all)+2)
	for k, v := range all {
		out[k] = v
	}
	switch {
	case p.Rate > 0:
		out["rate"] = p.Rate
	case p.Concurrency > 0:
		out["concurrency"] = p.Concurrency
	}
	if p.Requests > 0 {
		out["requests"] = p.Requests
	}
	out["worker"] = fmt.Sprintf("%d/%d", index, of)
	return out
}

func (c *coordinator) find(index int) *worker {
	if index < 1 || index > len(c.workers) {
		return nil
	}
	return c.workers[index-1]
}

func (c *coordinator) heartbeat(w http.ResponseWriter, r *http.Request) {
	var hb heartbeat
	if !decode(w, r, &hb, maxHeartbeat) {
		return
	}
	c.mu.Lock()
	wk := c.find(hb.Worker)
	if wk == nil || wk.reply == nil || hb.Round != c.round {
		c.mu.Unlock()
		writeError(w, http.StatusNotFound, "no worker %d in round %d of this run", hb.Worker, hb.Round)
		return
	}
	if wk.done && wk.rep.Status == report.WorkerLost {
		c.mu.Unlock()
		writeError(w, http.StatusGone, "worker %d was silent too long and counts as lost", hb.Worker)
		return
	}
	wk.lastSeen = time.Now()
	wk.rep.Requests, wk.rep.Errors = hb.Requests, hb.Errors
	reply := heartbeatReply{Stop: c.stop, SecondsHave: len(wk.seconds.intervals)}
	wk.toldStop = wk.toldStop || c.stop
	if !wk.done {
		// A heartbeat that follows the result brings nothing new (the
		// result had every second), and the seconds may be let go.
		reply.SecondsHave = wk.seconds.add(hb.secondsBatch)
	}
	if end := c.windowClosedAt(); !end.IsZero() {
		reply.WindowEndNs = end.UnixNano()
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, reply)
}

func (c *coordinator) result(w http.ResponseWriter, r *http.Request) {
	var rr resultReport
	if !decode(w, r, &rr, maxMessage) {
		return
	}
	c.mu.Lock()
	wk := c.find(rr.Worker)
	switch {
	case wk == nil || wk.reply == nil || rr.Round != c.round:
		c.mu.Unlock()
		writeError(w, http.StatusNotFound, "no worker %d in round %d of this run", rr.Worker, rr.Round)
		return
	case wk.done:
		c.mu.Unlock()
		writeError(w, http.StatusGone, "worker %d is already counted as %s", rr.Worker, wk.rep.Status)
		return
	}
	wk.done = true
	wk.lastSeen = time.Now()
	wk.seconds.add(rr.secondsBatch)
	if !c.keepSeconds {
		wk.seconds = workerSeconds{}
	}
	shift := -wk.offset // onto the coordinator's clock
	switch {
	case rr.Result == nil && c.stop:
		// Stopped by the coordinator's own interrupt before it sent a
		// request (the interrupt fell before the common start).
		wk.rep.Status, wk.rep.Error = report.WorkerInterrupted, rr.Error
	case rr.Result == nil:
		wk.rep.Status, wk.rep.Error = report.WorkerFailed, rr.Error
	default:
		res := rr.Result
		res.StartedAt, res.FinishedAt = res.StartedAt.Add(shift), res.FinishedAt.Add(shift)
		wk.result = res
		wk.rep.Requests, wk.rep.Errors = res.Requests, sumErrors(res.Errors)
		wk.rep.Status = report.WorkerOK
		if res.Interrupted {
			wk.rep.Status = report.WorkerInterrupted
		}
		wk.rep.Error = rr.Error
		wk.events, wk.trunc = eventsFromWire(rr.Events, shift), rr.Truncated
		if rr.BeganNs != 0 {
			began := time.Unix(0, rr.BeganNs).Add(shift)
			if late := began.Sub(c.startAt); late > c.cfg.StartTolerance+wk.uncertainty {
				// Its share ran on a span of its own: the window saw
				// less of the combined load than planned.
				wk.rep.Status = report.WorkerLate
				wk.rep.Error = fmt.Sprintf("began %v after the common start, more than --worker-start-tolerance %v (it was not ready by then, or the start's reply reached it late); its requests are in the result", late.Round(time.Millisecond), c.cfg.StartTolerance)
			}
		}
	}
	status, index, name, errText := wk.rep.Status, wk.rep.Index, wk.rep.Name, wk.rep.Error
	c.mu.Unlock()
	if status == report.WorkerLate {
		c.logf("warning: worker %d (%s) %s", index, name, errText)
	}
	c.logf("worker %d (%s) done: %s", index, name, status)
	writeJSON(w, http.StatusOK, struct{}{})
	c.signal()
}

// nextRoundWait bounds how long a call for the next round is held; the
// worker asks again.
const nextRoundWait = 5 * time.Second

// nextRound answers a worker that has sent its result of round After:
// the next round's share when it starts, "done" when there is none.
func (c *coordinator) nextRound(w http.ResponseWriter, r *http.Request) {
	var req nextRequest
	if !decode(w, r, &req, maxSmallMessage) {
		return
	}
	held := time.NewTimer(nextRoundWait)
	defer held.Stop()
	for {
		c.mu.Lock()
		wk := c.find(req.Worker)
		switch {
		case wk == nil:
			c.mu.Unlock()
			writeError(w, http.StatusNotFound, "no worker %d in this run", req.Worker)
			return
		case wk.gone:
			c.mu.Unlock()
			writeError(w, http.StatusGone, "worker %d was silent too long and counts as lost", req.Worker)
			return
		case wk.reply != nil && wk.reply.Round > req.After:
			reply := wk.reply
			c.mu.Unlock()
			writeJSON(w, http.StatusOK, nextReply{Next: reply})
			return
		case c.over || c.stop:
			// An interrupted run has no further round.
			wk.released = true
			c.mu.Unlock()
			writeJSON(w, http.StatusOK, nextReply{Done: true})
			c.signal()
			return
		}
		next := c.next
		c.mu.Unlock()
		select {
		case <-next:
		case <-held.C:
			writeJSON(w, http.StatusOK, nextReply{})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// signal wakes waitForResults (and Close's wait for the workers).
func (c *coordinator) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func sumErrors(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// waitForResults waits until every worker has sent its result or is
// lost: silent for LostAfter. An interrupted ctx tells the workers to
// stop; they then have their grace and LostAfter to answer.
func (c *coordinator) waitForResults(ctx context.Context) {
	tick := time.NewTicker(c.cfg.HeartbeatEvery / 2)
	defer tick.Stop()
	interrupted := ctx.Done()
	every := c.cfg.ProgressEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	lastProgress := time.Now()
	for {
		now := time.Now()
		c.mu.Lock()
		if c.cfg.Progress != nil && now.Sub(lastProgress) >= every {
			lastProgress = now
			c.writeProgress()
		}
		pending := 0
		for _, wk := range c.workers {
			if wk.done || wk.gone {
				continue
			}
			if now.Sub(wk.lastSeen) > c.cfg.LostAfter {
				wk.done, wk.gone = true, true
				wk.rep.Status = report.WorkerLost
				wk.rep.Error = c.keepLost(wk)
				c.logf("worker %d (%s) lost: %s", wk.rep.Index, wk.rep.Name, wk.rep.Error)
				continue
			}
			pending++
		}
		c.mu.Unlock()
		if pending == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-c.changed:
		case <-interrupted:
			interrupted = nil
			c.mu.Lock()
			c.stop, c.stopAt = true, time.Now()
			c.mu.Unlock()
			c.logf("interrupted: telling the workers to stop")
		}
	}
}

// keepLost keeps in wk's entry what a worker lost mid-run had sent of
// its seconds (see report.WorkerReport.CoveredS), and says what of it the
// result has. c.mu is held.
//
// Its requests are left out of the merged figures: the seconds it sent
// give its steady latencies, but not its errors by kind, its successful
// requests' latencies, the window's part or its per-second load, so a
// merge of them would make the merged figures disagree with one another.
func (c *coordinator) keepLost(wk *worker) string {
	silent := fmt.Sprintf("silent for %v mid-run", c.cfg.LostAfter)
	h, covered, err := wk.seconds.steady()
	wk.seconds = workerSeconds{}
	if err != nil || covered == 0 {
		return silent + " before it sent a finished second: none of its requests are in the merged figures, and their latencies are unknown"
	}
	enc, err := report.EncodeHistogram(h)
	if err != nil {
		return fmt.Sprintf("%s: none of its requests are in the merged figures (its seconds: %v)", silent, err)
	}
	wk.rep.CoveredS, wk.rep.Histogram = covered, enc
	return fmt.Sprintf("%s; the latencies of the %d steady requests in the first %g s of its run are kept apart in its entry (histogram): none of its requests are in the merged figures",
		silent, h.TotalCount(), covered)
}

// windowClosedAt is when this round's profile window closed early (the
// interrupt fell inside it); zero when it was not closed early. c.mu is
// held.
func (c *coordinator) windowClosedAt() time.Time {
	if !c.stop || c.window == nil || !c.stopAt.Before(c.window.Open.Add(c.window.Length)) {
		return time.Time{}
	}
	return maxTime(c.stopAt, c.window.Open)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// writeProgress writes the round's counts so far; c.mu is held.
func (c *coordinator) writeProgress() {
	var requests, errs int64
	running := 0
	for _, wk := range c.workers {
		if wk.gone && wk.rep.Status != report.WorkerLost {
			continue
		}
		requests += wk.rep.Requests
		errs += wk.rep.Errors
		if !wk.done {
			running++
		}
	}
	if running == 0 {
		return // every worker is done: the summary follows
	}
	fmt.Fprintf(c.cfg.Progress, "loadprof coordinator: %s running: %d steady requests, %d errors so far\n", workersCount(running), requests, errs)
}

// windowEvents are the window's requests of every worker, on the
// coordinator's clock; c.mu is held.
func (c *coordinator) windowEvents() (perWorker [][]profile.ClientEvent, truncated bool) {
	perWorker = make([][]profile.ClientEvent, len(c.workers))
	for i, wk := range c.workers {
		perWorker[i] = wk.events
		truncated = truncated || wk.trunc
	}
	return perWorker, truncated
}

// merge merges the workers' results with report.Merge, the merge of
// `loadprof merge`, and adds the workers and the coordinator's window
// (win, nil for none).
func (c *coordinator) merge(run bench.Config, win *coordWindow) (*report.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var results []*report.Result
	var sources []string
	var reps, missing []report.WorkerReport
	// workers[] and the error's list are one list: each worker keeps the
	// index it has in workers[] (joined in order of joining, then the
	// refused, then one entry for each worker that never joined).
	add := func(rep report.WorkerReport, lacking bool) {
		rep.Index = len(reps) + 1
		reps = append(reps, rep)
		if lacking {
			missing = append(missing, rep)
		}
	}
	for _, wk := range c.workers {
		if wk.result != nil {
			results = append(results, wk.result)
			sources = append(sources, fmt.Sprintf("worker-%d", wk.rep.Index))
		}
		// A worker stopped early by anything but the coordinator's own
		// interrupt (Ctrl-C on its machine) did not run its share: the
		// result lacks part of the load asked for.
		add(wk.rep, wk.rep.Status != report.WorkerOK && (wk.rep.Status != report.WorkerInterrupted || !c.stop))
	}
	for _, wk := range c.refused {
		add(wk.rep, true)
	}
	for i := len(c.workers) + len(c.refused); i < c.cfg.Workers; i++ {
		add(report.WorkerReport{Status: report.WorkerNeverJoined, Error: fmt.Sprintf("did not join within %v", c.cfg.JoinTimeout)}, true)
	}
	var errs []error
	if len(missing) > 0 {
		errs = append(errs, &WorkersError{Missing: missing})
	}
	if len(results) == 0 && c.stop {
		// Interrupted before any worker sent a request: the result
		// says so, with every worker's entry, as a run from one machine
		// interrupted before its load does.
		empty := c.interruptedEmpty(run)
		empty.Workers = reps
		return empty, errors.Join(errs...)
	}
	if len(results) == 0 {
		return nil, errors.Join(append(errs, &bench.TargetError{Err: errors.New("no worker sent a result")})...)
	}
	var merged *report.Result
	if len(results) == 1 {
		merged = results[0]
		merged.Host = nil
	} else {
		var err error
		var notes []string
		if merged, notes, err = report.Merge(results, sources); err != nil {
			return nil, fmt.Errorf("merging the workers' results: %w", err)
		}
		for _, n := range notes {
			c.logf("note: %s", n)
		}
	}
	merged.Config = run.Settings
	merged.Rate, merged.Concurrency, merged.MaxInflight = run.Plan.Rate, run.Plan.Concurrency, 0
	if run.Plan.Rate > 0 {
		merged.MaxInflight = run.Plan.MaxInflight
	}
	merged.Workers = reps
	if win != nil {
		events, truncated := c.windowEvents()
		merged.Profile = win.finish(events, truncated, merged.StartedAt, c.windowClosedAt())
	}
	if merged.Profile != nil && merged.Profile.Error != "" && run.Profile.Required && !merged.Interrupted {
		errs = append(errs, &bench.TargetError{Err: errors.New(merged.Profile.Error)})
	}
	return merged, errors.Join(errs...)
}

// interruptedEmpty is the result of a round interrupted before any
// worker sent a request: no requests, an empty histogram. c.mu is held.
func (c *coordinator) interruptedEmpty(run bench.Config) *report.Result {
	empty, _ := report.EncodeHistogram(load.NewHistogram()) // an empty histogram always encodes
	r := &report.Result{
		Version: report.ResultVersion, Tool: "loadprof " + bench.Version, Config: run.Settings,
		StartedAt: c.startAt.UTC(), FinishedAt: c.stopAt.UTC(), Target: bench.RedactURL(run.URL), Transport: "rest",
		Loop: "closed", LatencyFrom: "send", Rate: run.Plan.Rate, Concurrency: run.Plan.Concurrency,
		Histogram: empty, Interrupted: true,
	}
	if run.GRPC.Addr != "" {
		r.Target, r.Transport = run.GRPC.Addr, "grpc"
	}
	if run.Plan.Rate > 0 {
		r.Loop, r.LatencyFrom, r.MaxInflight = "open", "intended_send", run.Plan.MaxInflight
	}
	return r
}
