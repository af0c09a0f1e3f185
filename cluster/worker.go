package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// WorkerConfig is a worker: where the coordinator is and how to prove it
// belongs to the run.
type WorkerConfig struct {
	Coordinator string // HOST:PORT or http://HOST:PORT
	Token       string
	Name        string // how the coordinator calls it (the host name when empty)
	// JoinTimeout bounds the time from the first attempt to reach the
	// coordinator (which may not be up yet: a Kubernetes Service without
	// its pod) to the join reply (DefaultWorkerJoinTimeout when 0).
	JoinTimeout time.Duration
	// ClockSamples is how many round trips measure the clock offset
	// (DefaultClockSamples when 0).
	ClockSamples int
	// TempDir holds the payload files the coordinator sends while the run
	// lasts (os.TempDir when empty).
	TempDir string
	// Result, when set, gets the worker's own result (its share, on its
	// own clock) before it is sent: --out of a worker.
	Result   func(*report.Result)
	Log      io.Writer // one line per step; nil for none
	Warnings io.Writer // the run's warnings; nil for none
}

// Defaults of WorkerConfig.
const (
	DefaultWorkerJoinTimeout = 10 * time.Minute
	DefaultClockSamples      = 8
)

// retryEvery is the pause between attempts to reach a coordinator.
const retryEvery = time.Second

// waitingLogEvery is how often a worker that cannot reach its
// coordinator says so.
const waitingLogEvery = 5 * time.Second

// CheckCoordinatorAddr reports why addr (a worker's --join) cannot be a
// coordinator's address: it wants HOST:PORT (or http://HOST:PORT) with a
// port number. Checked before any attempt, since retrying a malformed
// address only ends at the join timeout.
func CheckCoordinatorAddr(addr string) error {
	hostPort := strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://"), "/")
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("want HOST:PORT (the coordinator's --listen address): %v", err)
	}
	if host == "" {
		return errors.New("want HOST:PORT: the host is missing")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	return nil
}

// Work joins the coordinator, runs the share it is given, and sends back
// the result. It returns nil when the coordinator took the result; a
// *StatusError when the coordinator refused the worker (wrong token, a
// clock too far off, a run already started).
func Work(ctx context.Context, cfg WorkerConfig) error {
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = DefaultWorkerJoinTimeout
	}
	if cfg.ClockSamples <= 0 {
		cfg.ClockSamples = DefaultClockSamples
	}
	if err := CheckCoordinatorAddr(cfg.Coordinator); err != nil {
		return setting.Invalid("cluster.WorkerConfig.Coordinator", fmt.Sprintf("%q", cfg.Coordinator), err.Error())
	}
	if cfg.Token == "" {
		return fmt.Errorf("cluster.WorkerConfig.Token: no token: give the run's (--token or %s)", TokenEnv)
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	c := &client{base: baseURL(cfg.Coordinator), token: cfg.Token, http: &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "loadprof worker: "+format+"\n", args...)
		}
	}
	deadline := time.Now().Add(cfg.JoinTimeout)
	offset, uncertainty, err := measureClock(ctx, c, cfg.ClockSamples, deadline, logf)
	if err != nil {
		return err
	}
	logf("reached %s; clock offset %+.3f ms (±%.3f ms); joining", c.base, float64(offset)/1e6, float64(uncertainty)/1e6)
	var reply joinReply
	req := joinRequest{Protocol: ProtocolVersion, Name: cfg.Name, Tool: "loadprof " + bench.Version, OffsetNs: int64(offset), UncertaintyNs: int64(uncertainty)}
	if err := c.call(ctx, pathJoin, req, &reply, time.Until(deadline)); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusServiceUnavailable {
			// Not refused: the coordinator gave up before the run (its
			// Ctrl-C); the message says so.
			return &UnreachableError{fmt.Errorf("joining %s: %s", c.base, se.Msg)}
		}
		err = fmt.Errorf("joining %s: %w", c.base, err)
		if !refused(err) {
			err = &UnreachableError{err}
		}
		return err
	}
	for {
		logf("worker %d, one of %d; the preflight call, then the common start", reply.Worker, reply.Of)
		told, err := runShare(ctx, c, cfg, reply, offset, logf)
		if err != nil || told {
			// A worker the coordinator told to stop has no next round
			// to ask for: the coordinator is closing.
			return err
		}
		next, err := c.awaitNext(ctx, reply)
		if err != nil || next == nil {
			return err
		}
		reply = *next
	}
}

// awaitNext asks for the round after reply's until the coordinator gives
// it (a sweep's next step) or says there is none (nil); a coordinator
// that does not answer for LostAfter is gone.
func (c *client) awaitNext(ctx context.Context, reply joinReply) (*joinReply, error) {
	lastOK := time.Now()
	for ctx.Err() == nil {
		var r nextReply
		err := c.call(ctx, pathNext, nextRequest{Worker: reply.Worker, After: reply.Round}, &r, nextRoundWait+reply.LostAfter)
		switch {
		case err == nil && r.Done:
			return nil, nil
		case err == nil && r.Next != nil:
			return r.Next, nil
		case err == nil:
			lastOK = time.Now()
		case refused(err):
			return nil, fmt.Errorf("asking for the next round: %w", err)
		case time.Since(lastOK) > reply.LostAfter:
			return nil, &UnreachableError{fmt.Errorf("the coordinator has not answered for %v after the result: %w", reply.LostAfter, err)}
		default:
			time.Sleep(retryEvery)
		}
	}
	return nil, nil
}

// awaitStart says the worker is ready for reply's round and asks until
// the coordinator gives the common start; a coordinator that does not
// answer for LostAfter is gone.
func (c *client) awaitStart(ctx context.Context, reply joinReply) (readyReply, error) {
	lastOK := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return readyReply{}, context.Cause(ctx)
		}
		var r readyReply
		err := c.call(ctx, pathReady, readyRequest{Round: reply.Round, Worker: reply.Worker}, &r, nextRoundWait+reply.LostAfter)
		switch {
		case err == nil && !r.StartAt.IsZero():
			return r, nil
		case err == nil:
			lastOK = time.Now()
		case ctx.Err() != nil:
			return readyReply{}, context.Cause(ctx)
		case refused(err):
			return readyReply{}, fmt.Errorf("asking for the common start: %w", err)
		case time.Since(lastOK) > reply.LostAfter:
			return readyReply{}, &UnreachableError{fmt.Errorf("the coordinator has not answered for %v before the start: %w", reply.LostAfter, err)}
		default:
			time.Sleep(retryEvery)
		}
	}
}

// measureClock estimates the worker's clock minus the coordinator's from
// n round trips: the one with the least delay bounds the offset best (its
// half is the uncertainty), as NTP does. It retries a coordinator it
// cannot reach until deadline.
func measureClock(ctx context.Context, c *client, n int, deadline time.Time, logf func(string, ...any)) (offset, uncertainty time.Duration, err error) {
	best := time.Duration(-1)
	var lastSaid time.Time
	for got := 0; got < n; {
		sent := time.Now()
		var r clockReply
		err := c.call(ctx, pathClock, struct{}{}, &r, 5*time.Second)
		back := time.Now()
		if err == nil && !plausibleClock(r.NowNs, sent) {
			err = &NotCoordinatorError{Addr: c.base, Why: fmt.Sprintf("its clock reply has no plausible now_ns (%d)", r.NowNs)}
		}
		if err != nil {
			if nc := notCoordinator(c.base, err); nc != nil {
				return 0, 0, nc
			}
			if refused(err) {
				return 0, 0, err
			}
			if ctx.Err() != nil {
				return 0, 0, ctx.Err()
			}
			if time.Now().Add(retryEvery).After(deadline) {
				return 0, 0, &UnreachableError{fmt.Errorf("coordinator %s not reached: %w", c.base, err)}
			}
			if time.Since(lastSaid) >= waitingLogEvery {
				// A coordinator not up yet (its pod being scheduled) is
				// normal; a silent worker looks hung.
				lastSaid = time.Now()
				logf("waiting for the coordinator at %s: %v", c.base, unwrapNet(err))
			}
			time.Sleep(retryEvery)
			continue
		}
		got++
		rtt := back.Sub(sent) // monotonic
		if best < 0 || rtt < best {
			best = rtt
			mid := sent.Add(rtt / 2)
			offset = mid.Sub(time.Unix(0, r.NowNs))
		}
	}
	return offset, best / 2, nil
}

// plausibleClock reports whether a coordinator's clock reading is one a
// clock could give: within a year of this machine's (a clock further off
// is refused at join anyway; this catches a server that is something
// else and answered {} or a number of its own).
func plausibleClock(nowNs int64, local time.Time) bool {
	const year = 365 * 24 * time.Hour
	return nowNs > 0 && time.Unix(0, nowNs).Sub(local).Abs() < year
}

// NotCoordinatorError is an answer at the coordinator's address from
// something that is not a loadprof coordinator (a model server's gRPC
// port, a web server): trying again will not help.
type NotCoordinatorError struct {
	Addr string
	Why  string
}

func (e *NotCoordinatorError) Error() string {
	return fmt.Sprintf("%s is not a loadprof coordinator: %s (is --join the coordinator's --listen address?)", e.Addr, e.Why)
}

// notCoordinator turns an answer no coordinator gives into a
// *NotCoordinatorError; nil for any other error.
func notCoordinator(addr string, err error) error {
	var nc *NotCoordinatorError
	var se *StatusError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &nc):
		return nc
	case errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed):
		return &NotCoordinatorError{Addr: addr, Why: fmt.Sprintf("it answered %s with %d", se.Path, se.Status)}
	case errors.As(err, &syntax), errors.As(err, &typ):
		return &NotCoordinatorError{Addr: addr, Why: "its answer is not the coordinator's JSON"}
	case strings.Contains(err.Error(), "malformed HTTP response"):
		// An HTTP/2-only server (gRPC) answers HTTP/1.1 with its
		// preface.
		return &NotCoordinatorError{Addr: addr, Why: "it answered in HTTP/2 (a gRPC port?)"}
	}
	return nil
}

// errCoordinatorStopped is why a worker's run stops when the
// coordinator says stop (it was interrupted).
var errCoordinatorStopped = errors.New("the coordinator was interrupted")

// runShare runs the worker's share and sends the result; told says the
// coordinator stopped it.
func runShare(ctx context.Context, c *client, cfg WorkerConfig, reply joinReply, offset time.Duration, logf func(string, ...any)) (told bool, err error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "loadprof-worker-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	run, err := reply.Spec.benchConfig(dir, offset)
	if err != nil {
		return false, c.report(ctx, resultReport{Round: reply.Round, Worker: reply.Worker, Error: err.Error()}, reply.LostAfter)
	}
	run.Warnings = cfg.Warnings
	var events []clientEvent
	var truncated bool
	var windowEnd atomic.Int64 // Unix ns on the coordinator's clock; 0 for as planned
	if run.RemoteWindow != nil {
		run.RemoteWindow.Events = func(e []profile.ClientEvent, t bool) { events, truncated = eventsToWire(e), t }
		run.RemoteWindow.ClosedAt = func() time.Time {
			if ns := windowEnd.Load(); ns != 0 {
				return time.Unix(0, ns).Add(offset) // onto this machine's clock
			}
			return time.Time{}
		}
	}
	// The run's seconds go to the coordinator as they end (see
	// secondsBatch), through the interval log bench writes.
	tap := &secondsTap{}
	run.IntervalLog = func() (io.WriteCloser, error) { return tap, nil }
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	toldStop := func() bool { return errors.Is(context.Cause(runCtx), errCoordinatorStopped) }
	live := &liveness{worker: reply.Worker, round: reply.Round, windowEnd: &windowEnd, tap: tap}
	var wg sync.WaitGroup
	beatDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		beat(runCtx, c, reply, live, stop, beatDone, logf)
	}()
	defer func() { close(beatDone); wg.Wait() }()

	// bench makes its checks and its preflight call, then asks for the
	// common start: the coordinator sets it once every worker is ready,
	// so that a preflight that takes long (an LLM's whole answer) does
	// not shift this worker's load past it, nor its steady phase past the
	// window.
	run.AwaitStart = func(ctx context.Context) (time.Time, error) {
		r, err := c.awaitStart(ctx, reply)
		if err != nil {
			return time.Time{}, err
		}
		start := r.StartAt.Add(offset) // on this machine's clock
		if run.RemoteWindow != nil && !r.WindowOpen.IsZero() {
			run.RemoteWindow.Open = r.WindowOpen.Add(offset)
		}
		logf("ready; the load starts at %s (coordinator's clock)", r.StartAt.UTC().Format("15:04:05.000"))
		if late := time.Since(start); late > 0 {
			logf("warning: the start time had passed %v when this worker heard it: it begins late (the coordinator counts it as late)", late.Round(time.Millisecond))
		}
		return start, nil
	}
	var began atomic.Int64 // when the load began, Unix ns; 0 before
	run.Watch = func(p func() load.Progress) {
		began.Store(time.Now().UnixNano())
		live.read.Store(&p)
	}
	res, runErr := bench.Run(runCtx, run)
	if res == nil && began.Load() == 0 && runCtx.Err() != nil {
		err := c.report(ctx, resultReport{Round: reply.Round, Worker: reply.Worker, Error: "stopped before the start: " + context.Cause(runCtx).Error()}, reply.LostAfter)
		return toldStop(), err
	}
	final := heartbeat{Round: reply.Round, Worker: reply.Worker, Phase: "done"}
	if res != nil {
		final.Requests, final.Errors = res.Requests, sumErrors(res.Errors)
	}
	live.final.Store(&final)
	rr := resultReport{Round: reply.Round, Worker: reply.Worker, Result: res, Events: events, Truncated: truncated, BeganNs: began.Load(), secondsBatch: tap.batch(0)}
	if runErr != nil {
		rr.Error = runErr.Error()
	}
	if res != nil {
		res.Config = reply.Spec.Settings
		logf("done: %d requests, %.1f req/s", res.Requests, res.ThroughputRPS)
		if cfg.Result != nil {
			cfg.Result(res)
		}
	}
	sendFor := reply.LostAfter
	if toldStop() {
		// A coordinator that said stop is waiting for the result now, or
		// has quit (a second Ctrl-C): a few seconds of retries, not
		// --worker-lost-after.
		sendFor = 0
	}
	err = c.report(ctx, rr, sendFor)
	if err == nil && runErr != nil && res == nil {
		return toldStop(), runErr
	}
	return toldStop(), err
}

// report sends the result, retrying for up to lostAfter a coordinator
// that does not answer.
func (c *client) report(ctx context.Context, rr resultReport, lostAfter time.Duration) error {
	deadline := time.Now().Add(max(lostAfter, 5*time.Second))
	for {
		// The send itself is bounded by what a large result needs on a
		// slow link, not by the heartbeat's period.
		err := c.call(context.WithoutCancel(ctx), pathResult, rr, nil, time.Minute)
		if err == nil || refused(err) || time.Now().Add(retryEvery).After(deadline) {
			switch {
			case err != nil && refused(err):
				return fmt.Errorf("sending the result: %w", err)
			case err != nil:
				return &UnreachableError{fmt.Errorf("sending the result: %w", err)}
			}
			return nil
		}
		time.Sleep(retryEvery)
	}
}

// liveness is what a worker's heartbeat says: waiting for the start,
// the run's counts while it runs, its final counts once it is done.
type liveness struct {
	worker int
	round  int
	read   atomic.Pointer[func() load.Progress]
	final  atomic.Pointer[heartbeat]
	// windowEnd gets the coordinator's early close of the window.
	windowEnd *atomic.Int64
	tap       *secondsTap // the finished seconds the coordinator lacks
}

func (l *liveness) now() heartbeat {
	if f := l.final.Load(); f != nil {
		return *f
	}
	hb := heartbeat{Round: l.round, Worker: l.worker, Phase: "waiting"}
	if p := l.read.Load(); p != nil {
		lp := (*p)()
		hb.Phase, hb.Requests, hb.Errors = lp.Phase.String(), lp.SteadyRequests, lp.SteadyErrors
	}
	return hb
}

// beat reports progress every HeartbeatEvery until done; it stops the
// run when the coordinator says so, and when the coordinator has not
// answered for LostAfter (it is gone: nobody would take the result).
func beat(ctx context.Context, c *client, reply joinReply, live *liveness, stop context.CancelCauseFunc, done <-chan struct{}, logf func(string, ...any)) {
	every := reply.HeartbeatEvery
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastOK := time.Now()
	stopped := false
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		var r heartbeatReply
		hb := live.now()
		if live.tap != nil {
			hb.secondsBatch = live.tap.batch(maxSecondsPerBeat)
		}
		err := c.call(context.WithoutCancel(ctx), pathHeartbeat, hb, &r, every*4)
		switch {
		case err == nil:
			lastOK = time.Now()
			if live.tap != nil {
				live.tap.acked(r.SecondsHave)
			}
			if r.WindowEndNs != 0 {
				live.windowEnd.Store(r.WindowEndNs)
			}
			if r.Stop && !stopped {
				stopped = true
				logf("the coordinator says stop")
				stop(errCoordinatorStopped)
			}
		case refused(err) && !stopped:
			stopped = true
			logf("%v", err)
			stop(err)
		case time.Since(lastOK) > reply.LostAfter && !stopped:
			stopped = true
			logf("coordinator silent for %v: stopping", reply.LostAfter)
			stop(fmt.Errorf("the coordinator has not answered for %v", reply.LostAfter))
		}
	}
}

// benchConfig makes the worker's bench.Config: the input files written
// under dir, the window moved onto this machine's clock by offset.
func (s RunSpec) benchConfig(dir string, offset time.Duration) (bench.Config, error) {
	data, stdin, err := s.Data.materialize(dir)
	if err != nil {
		return bench.Config{}, err
	}
	tlsFiles := bench.TLSFiles{Enabled: s.TLS.Enabled, InsecureSkipVerify: s.TLS.InsecureSkipVerify}
	tlsDir := filepath.Join(dir, "tls")
	for _, f := range []struct {
		file *File
		dst  *string
	}{{s.TLS.CA, &tlsFiles.CA}, {s.TLS.Cert, &tlsFiles.Cert}, {s.TLS.Key, &tlsFiles.Key}} {
		if f.file == nil {
			continue
		}
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			return bench.Config{}, err
		}
		if *f.dst, err = writeFile(tlsDir, *f.file); err != nil {
			return bench.Config{}, err
		}
	}
	cfg := bench.Config{
		URL: s.URL, GRPC: s.GRPC, Headers: s.Headers, DataPath: data, Stdin: stdin, MaxPayloadBytes: s.MaxPayloadBytes,
		PayloadOffset: s.PayloadOffset, Plan: s.Plan.plan(), Timeout: s.Timeout, MaxResponseBytes: s.MaxResponseBytes,
		TLS: tlsFiles, RESTEngine: s.RESTEngine, V2Binary: s.V2Binary, Settings: s.Settings,
	}
	if s.SLO != "" {
		slo, err := report.ParseSLO(s.SLO)
		if err != nil {
			return bench.Config{}, fmt.Errorf("cluster: the coordinator's objective %q: %w", s.SLO, err)
		}
		cfg.SLO, cfg.SLOSpec = &slo, s.SLO
	}
	if s.Window != nil {
		cfg.RemoteWindow = &bench.RemoteWindow{Open: s.Window.Open.Add(offset), Length: s.Window.Length}
	}
	return cfg, nil
}

// unwrapNet is a failed call's innermost cause ("connection refused"),
// without the URL and operation a log line already names.
func unwrapNet(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
