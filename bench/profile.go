package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ProfileConfig asks for a profile window in the middle of the steady load.
type ProfileConfig struct {
	Addr     string        // the server's gRPC port (TF Serving: 8500)
	Delay    time.Duration // after the steady phase starts
	Required bool          // a failed capture fails the run (exit 3)
	Options  profile.Options
	// RequestEvents name the server's request-level events, in order of
	// preference; profile.DefaultRequestEvents when empty.
	RequestEvents []string
	// HTTP, when set, is the base URL (http://HOST:PORT) of vLLM's HTTP
	// profiler control: the window is opened with POST /start_profile and
	// closed with /stop_profile instead of the gRPC ProfilerService (Addr
	// is then unused). Options.Duration is the window's length and
	// Options.Slack bounds the wait for /stop_profile.
	HTTP string
}

// window runs one capture while the load runs and holds the steady phase
// open until the capture returns, or until the window's end plus
// holdMargin: a profiler that takes the call and never answers must not
// stretch the steady phase by its whole --profile-timeout.
type window struct {
	cfg      ProfileConfig
	tls      *tls.Config
	rec      *load.Recorder
	hold     chan struct{} // closed when the steady phase may end
	holdOnce sync.Once
	done     chan struct{} // closed when the capture has returned
	report   *report.ProfileReport
	err      error
	edge     func(open bool) // told when the window opens and closes; nil for none
}

// holdMargin is how long past the window's planned end the steady phase
// waits for the capture to return: the server's window starts a little
// after the call (tracers start up, a GPU's in seconds), and must end under
// load too.
func holdMargin(window time.Duration) time.Duration { return max(2*time.Second, window/4) }

func (w *window) release() { w.holdOnce.Do(func() { close(w.hold) }) }

// profilerCheckWait bounds the check that the profiler can be reached
// before the load starts.
const profilerCheckWait = 3 * time.Second

// checkProfiler tells whether the ProfilerService at addr can be reached
// (a gRPC connection is made; no window is opened).
func checkProfiler(ctx context.Context, addr string, tlsConfig *tls.Config) error {
	creds := insecure.NewCredentials()
	if tlsConfig != nil {
		creds = credentials.NewTLS(tlsConfig)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("profile %s: %w", addr, err)
	}
	defer conn.Close()
	err = profile.Reachable(ctx, conn, addr, profilerCheckWait)
	if err != nil && ctx.Err() == nil && answersHTTP1(addr) {
		return fmt.Errorf("profile %s: this port answered in HTTP/1.1, not gRPC: the ProfilerService is on the server's gRPC port (TF Serving: 8500; 8501 is REST)", addr)
	}
	return err
}

// answersHTTP1 reports whether addr answers a gRPC client's first bytes the
// way an HTTP/1.1 server does: a REST port given for the profiler.
func answersHTTP1(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return false
	}
	first := make([]byte, len("HTTP/1."))
	_, err = io.ReadFull(conn, first)
	return err == nil && string(first) == "HTTP/1."
}

// newWindow prepares a window; an interrupted capture waits for its trace
// as long as the run waits for requests in flight (grace), unless the
// options say otherwise.
func newWindow(cfg ProfileConfig, grace time.Duration, tlsConfig *tls.Config, rec *load.Recorder) *window {
	if cfg.Options.Grace == 0 {
		cfg.Options.Grace = grace
	}
	return &window{cfg: cfg, tls: tlsConfig, rec: rec, hold: make(chan struct{}), done: make(chan struct{}), report: &report.ProfileReport{}}
}

// start is called when the first steady request is sent.
func (w *window) start(ctx context.Context) {
	if w.cfg.HTTP != "" {
		go w.runHTTP(ctx)
		return
	}
	go func() {
		defer close(w.done)
		defer w.release()
		if !w.waitToOpen(ctx, w.cfg.Addr) {
			return
		}
		creds := insecure.NewCredentials()
		if w.tls != nil {
			creds = credentials.NewTLS(w.tls)
		}
		conn, err := grpc.NewClient(w.cfg.Addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			w.fail(fmt.Errorf("profile %s: %w", w.cfg.Addr, err))
			return
		}
		defer conn.Close()
		w.rec.SetWindow(true)
		w.report.WindowStartS = w.rec.Now().Seconds()
		if w.edge != nil {
			w.edge(true)
			defer w.edge(false)
		}
		window := w.cfg.Options.Duration
		if window <= 0 {
			window = profile.DefaultDuration
		}
		bound := time.AfterFunc(window+holdMargin(window), w.release)
		defer bound.Stop()
		res, err := profile.Capture(ctx, conn, w.cfg.Addr, w.cfg.Options)
		w.rec.SetWindow(false)
		w.report.WindowEndS = w.rec.Now().Seconds()
		w.report.Result = res
		if err != nil {
			w.fail(err)
		}
	}()
}

func (w *window) fail(err error) {
	w.err = err
	w.report.Error = err.Error()
}

// finish waits for the capture (bounded), then writes the client plane and
// summarises the trace.
func (w *window) finish() *report.ProfileReport {
	o := w.cfg.Options
	bound := o.Duration + o.Slack + 10*time.Second
	if w.cfg.HTTP != "" {
		// Both the start and the stop may take --profile-timeout; past
		// this bound the window's goroutine has certainly returned, so
		// the report is never read while it is written.
		bound = o.Duration + 2*w.httpSlack() + 10*time.Second
	}
	select {
	case <-w.done:
	case <-time.After(bound):
		w.fail(fmt.Errorf("profile %s: the capture did not return", w.where()))
		return w.report
	}
	if w.cfg.HTTP != "" {
		// The trace stays on the server's disk: nothing to summarise or
		// place, and the window is the one the control calls bounded.
		w.report.WindowFrom = "profile_call"
		return w.report
	}
	res := w.report.Result
	if res == nil {
		return w.report
	}
	if files := res.TraceFiles(); len(files) > 0 {
		// Read back as a stream: a trace of any size costs a window and
		// the op names, and the load is over by now.
		sum, err := profile.SummarizeFiles(files)
		if err != nil && w.err == nil {
			w.fail(fmt.Errorf("summarising the trace: %w", err))
		}
		w.report.SpanMs, w.report.TopOps, w.report.Planes = sum.SpanMs, sum.Top(20), sum.Stats
	}
	if err := w.writeClientPlane(res); err != nil && w.err == nil {
		w.fail(err)
	}
	w.narrowToServerWindow()
	return w.report
}

// where names the profiler in messages.
func (w *window) where() string {
	if w.cfg.HTTP != "" {
		return w.cfg.HTTP
	}
	return w.cfg.Addr
}

// waitToOpen waits out the window's delay; false, the window failed, when
// ctx ends first. target names the profiler in the error.
func (w *window) waitToOpen(ctx context.Context, target string) bool {
	t := time.NewTimer(w.cfg.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		w.fail(fmt.Errorf("profile %s: interrupted before the window opened", target))
		return false
	}
}

// runHTTP is the window through vLLM's HTTP profiler control. The
// requests inside are those sent between /start_profile's answer (the
// server is tracing by then) and the sending of /stop_profile. The stop is
// sent on an interrupt too, on a context of its own: a server left
// profiling grows its trace until it runs out of memory.
//
// The start has StartBound to answer. Past it the window could no longer
// sit in the steady load without holding the steady phase longer than a
// gRPC window may (holdMargin past its planned end), so the load goes on
// without a window, and once the start has answered or timed out the stop
// is still sent: vLLM starts its profiler for a start whose caller has
// gone.
//
// An interrupt bounds the waits for either call: --grace after it (the
// wait for requests in flight), nothing after a second one (Hurry). A
// start given up then is still followed by a stop, within
// AbandonedStopBound.
func (w *window) runHTTP(ctx context.Context) {
	defer close(w.done)
	defer w.release()
	if !w.waitToOpen(ctx, w.cfg.HTTP) {
		return
	}
	cut, stopWatching := w.interruptCut(ctx)
	defer stopWatching()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: w.tls, Proxy: nil}}
	defer client.CloseIdleConnections()
	ctl := &profile.HTTPProfiler{Base: w.cfg.HTTP, Client: client}
	prefix := profile.HTTPRunPrefix(time.Now())
	hw := &profile.HTTPWindow{Backend: profile.BackendVLLMHTTP, URL: w.cfg.HTTP, Prefix: prefix}
	w.report.HTTP = hw
	slack := w.httpSlack()
	length := w.cfg.Options.Duration
	if length <= 0 {
		length = profile.DefaultDuration
	}
	// Not cancelled by an interrupt: a start the server took must be
	// known, so that it is stopped.
	startCtx, cancelStart := context.WithTimeout(context.WithoutCancel(ctx), slack)
	defer cancelStart()
	startSent := time.Now()
	answered := make(chan error, 1)
	go func() { answered <- ctl.Start(startCtx, prefix) }()
	bound := StartBound(length)
	boundTimer := time.NewTimer(bound)
	var err error
	select {
	case err = <-answered:
		boundTimer.Stop()
	case <-boundTimer.C:
		w.lateStart(ctl, hw, startSent, bound, answered, startCtx, cut)
		return
	case <-cut:
		boundTimer.Stop()
		cancelStart()
		hw.StartMs = msSince(startSent)
		w.release()
		w.fail(fmt.Errorf("profile %s/start_profile: no answer in %.1fs when the interrupted run stopped waiting (--grace, or a second interrupt): no window was opened; %s",
			w.cfg.HTTP, hw.StartMs/1e3, w.stopAfterFailedStart(ctl, hw, AbandonedStopBound, "", nil)))
		return
	}
	hw.StartMs = msSince(startSent)
	if err != nil {
		if profile.StopOwed(err) && !refusedConn(err) {
			// A 5xx or a lost answer: the server may be profiling (a
			// refused connection reached nothing that could be).
			w.release()
			err = fmt.Errorf("%w; %s", err, w.stopAfterFailedStart(ctl, hw, slack, "--profile-timeout", cut))
		}
		w.fail(err)
		return
	}
	hw.Started = time.Now()
	w.rec.SetWindow(true)
	w.report.WindowStartS = w.rec.Now().Seconds()
	if w.edge != nil {
		w.edge(true)
	}
	timer := time.NewTimer(length)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		hw.Interrupted = true
	}
	w.rec.SetWindow(false)
	w.report.WindowEndS = w.rec.Now().Seconds()
	if w.edge != nil {
		w.edge(false)
	}
	// The load may end now: the server writes its trace with or without it.
	w.release()
	if err := w.stopHTTP(ctl, hw, slack, "--profile-timeout", cut); err != nil {
		w.fail(err)
		return
	}
	hw.Trace = profile.TraceHint(prefix)
}

// AbandonedStopBound bounds the stop sent after a start that was given
// up on an interrupt (here and by a coordinator): the user asked to stop waiting, and a server that
// did not answer the start seldom answers the stop sooner.
const AbandonedStopBound = time.Second

// interruptCut is InterruptCut with the window's --grace.
func (w *window) interruptCut(ctx context.Context) (cut <-chan struct{}, stop func()) {
	return InterruptCut(ctx, w.cfg.Options.Grace)
}

// InterruptCut returns a channel closed grace after ctx is cancelled, or
// at once on a second interrupt (the Hurry ctx carries): the end of the
// HTTP profiler control's waits in an interrupted run, here and in a
// coordinated one. stop ends the watch.
func InterruptCut(ctx context.Context, grace time.Duration) (cut <-chan struct{}, stop func()) {
	c := make(chan struct{})
	quit := make(chan struct{})
	hurry := hurryOf(ctx).done()
	go func() {
		select {
		case <-ctx.Done():
		case <-quit:
			return
		}
		graceTimer := time.NewTimer(grace)
		defer graceTimer.Stop()
		select {
		case <-graceTimer.C:
		case <-hurry:
		case <-quit:
			return
		}
		close(c)
	}()
	return c, func() { close(quit) }
}

// StartBound is how long /start_profile may take for a window of the given
// length to open: the margin a window may hold the steady phase past its
// planned end.
func StartBound(window time.Duration) time.Duration { return holdMargin(window) }

// lateStart handles a /start_profile that has not answered within its
// bound: the steady phase is released at once, and the stop is sent once
// the start has answered or timed out (a stop sent first could reach a
// server before the start it ends), or the interrupted run stopped
// waiting for it (cut).
func (w *window) lateStart(ctl *profile.HTTPProfiler, hw *profile.HTTPWindow, startSent time.Time, bound time.Duration, answered <-chan error, startCtx context.Context, cut <-chan struct{}) {
	hw.Late = true
	w.release()
	var err error
	abandoned := false
	select {
	case err = <-answered: // bounded by startCtx: --profile-timeout
	case <-cut:
		abandoned = true
	}
	hw.StartMs = msSince(startSent)
	late := fmt.Sprintf("profile %s/start_profile: no answer within %v, when the window had to open in the steady load: no window was opened (the load went on without one)", w.cfg.HTTP, bound)
	var then string
	switch {
	case abandoned:
		then = fmt.Sprintf("no answer in %.1fs when the interrupted run stopped waiting (--grace, or a second interrupt)", hw.StartMs/1e3)
		w.fail(fmt.Errorf("%s; %s; %s", late, then, w.stopAfterFailedStart(ctl, hw, AbandonedStopBound, "", nil)))
		return
	case err == nil:
		then = fmt.Sprintf("it answered after %.1fs", hw.StartMs/1e3)
	case startCtx.Err() != nil:
		then = fmt.Sprintf("no answer in %v (--profile-timeout) either", w.httpSlack())
	default:
		then = fmt.Sprintf("after %.1fs: %v", hw.StartMs/1e3, err)
	}
	if err != nil && (!profile.StopOwed(err) || refusedConn(err)) {
		w.fail(fmt.Errorf("%s; %s", late, then))
		return
	}
	w.fail(fmt.Errorf("%s; %s; %s", late, then, w.stopAfterFailedStart(ctl, hw, w.httpSlack(), "--profile-timeout", cut)))
}

// stopAfterFailedStart sends the stop a start that may have taken effect
// is owed, and says how it went.
func (w *window) stopAfterFailedStart(ctl *profile.HTTPProfiler, hw *profile.HTTPWindow, bound time.Duration, boundName string, cut <-chan struct{}) string {
	err := w.stopHTTP(ctl, hw, bound, boundName, cut)
	switch {
	case err == nil:
		return fmt.Sprintf("/stop_profile was sent and answered in %.0f ms, so the server is not left profiling (any files %s_* it wrote cover no window of this run)", hw.StopMs, hw.Prefix)
	case refusedConn(err):
		// Nothing listens there: nothing is profiling either.
		return err.Error()
	}
	return "the server may still be profiling: " + err.Error()
}

// stopHTTP sends /stop_profile, bounded by bound (named by boundName in
// the error) and by cut, and records its times: Stopped only when the
// server answered.
func (w *window) stopHTTP(ctl *profile.HTTPProfiler, hw *profile.HTTPWindow, bound time.Duration, boundName string, cut <-chan struct{}) error {
	stopCtx, cancelStop := context.WithTimeout(context.Background(), bound)
	defer cancelStop()
	hw.StopSent = time.Now()
	answered := make(chan error, 1)
	go func() { answered <- ctl.Stop(stopCtx) }()
	var err error
	select {
	case err = <-answered:
	case <-cut:
		cancelStop()
		<-answered // at once: its context is cancelled
		hw.StopMs = msSince(hw.StopSent)
		return fmt.Errorf("profile %s/stop_profile: no answer in %.1fs when the interrupted run stopped waiting (--grace, or a second interrupt): the server may still be writing its trace, or still profiling", w.cfg.HTTP, hw.StopMs/1e3)
	}
	hw.StopMs = msSince(hw.StopSent)
	if noAnswer(err) {
		if stopCtx.Err() != nil {
			within := fmt.Sprintf("%v", bound)
			if boundName != "" {
				within += " (" + boundName + ")"
			}
			return fmt.Errorf("profile %s/stop_profile: no answer in %s: the server may still be writing its trace, or still profiling", w.cfg.HTTP, within)
		}
		return err
	}
	hw.Stopped = time.Now()
	return err
}

// noAnswer tells whether a control call's error is one with no HTTP
// answer (a connection refused or lost, a timeout), not a status.
func noAnswer(err error) bool {
	var ue *url.Error
	return err != nil && errors.As(err, &ue)
}

// refusedConn tells whether a control call found nothing listening.
func refusedConn(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1e3 }

// check finds a profiler that cannot be reached before the load starts.
// The HTTP control has nothing to ask without opening a window, so its
// check is a TCP connection; a server without its profiler is found at
// /start_profile.
func (c *ProfileConfig) check(ctx context.Context, tlsConfig *tls.Config) error {
	if c.HTTP == "" {
		return checkProfiler(ctx, c.Addr, tlsConfig)
	}
	u, err := url.Parse(c.HTTP)
	if err != nil {
		return fmt.Errorf("profile %s: %w", c.HTTP, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443"}[u.Scheme]+map[string]string{"http": "80"}[u.Scheme])
	}
	d := net.Dialer{Timeout: profilerCheckWait}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("profile %s: %w", c.HTTP, err)
	}
	return conn.Close()
}

// httpSlack is the window's HTTPSlack.
func (w *window) httpSlack() time.Duration { return w.cfg.HTTPSlack() }

// HTTPSlack bounds each call of the HTTP profiler control:
// --profile-timeout (Options.Slack), a minute when not given. A
// coordinator's window takes the same bound.
func (c ProfileConfig) HTTPSlack() time.Duration {
	if c.Options.Slack > 0 {
		return c.Options.Slack
	}
	return time.Minute
}
