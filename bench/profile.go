package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
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
}

// ProfileReport is the "profile" object of result.json.
type ProfileReport struct {
	*profile.Result
	Error        string  `json:"error,omitempty"`
	WindowStartS float64 `json:"window_start_s"` // run clock, like phases
	WindowEndS   float64 `json:"window_end_s"`
	// WindowFrom says what the window's requests are: those sent while the
	// server traced ("server_trace", its recorded interval placed on the
	// client's clock) or while the Profile call was open ("profile_call").
	WindowFrom  string  `json:"window_from"`
	ClientTrace string  `json:"client_trace,omitempty"` // loadprof's own plane, beside the server's
	SpanMs      float64 `json:"span_ms"`
	// TopOps are the top ops of each plane (profile.Summary.Top), Planes
	// how busy each plane was: a share is over its plane's time in ops.
	TopOps []profile.Op         `json:"top_ops"`
	Planes []profile.PlaneStats `json:"planes,omitempty"`
	// Timeline: the clock offset, where the client plane is placed, and
	// the latency split around the server's request events.
	Timeline *profile.Timeline `json:"timeline,omitempty"`
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
	report   *ProfileReport
	err      error
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
	return &window{cfg: cfg, tls: tlsConfig, rec: rec, hold: make(chan struct{}), done: make(chan struct{}), report: &ProfileReport{}}
}

// start is called when the first steady request is sent.
func (w *window) start(ctx context.Context) {
	go func() {
		defer close(w.done)
		defer w.release()
		t := time.NewTimer(w.cfg.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			w.fail(fmt.Errorf("profile %s: interrupted before the window opened", w.cfg.Addr))
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
func (w *window) finish() *ProfileReport {
	o := w.cfg.Options
	select {
	case <-w.done:
	case <-time.After(o.Duration + o.Slack + 10*time.Second):
		w.fail(fmt.Errorf("profile %s: the capture did not return", w.cfg.Addr))
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

// writeProfileSummary prints where the trace is and its top ops.
func writeProfileSummary(w io.Writer, p *ProfileReport) {
	fmt.Fprintln(w)
	if p.Result == nil {
		fmt.Fprintf(w, "  profile: FAILED: %s\n", p.Error)
		return
	}
	r := p.Result
	fmt.Fprintf(w, "  profile window %.3fs..%.3fs on %s, run %s", p.WindowStartS, p.WindowEndS, r.Address, r.Run)
	if r.Terminated {
		fmt.Fprint(w, " (ended early)")
	}
	fmt.Fprintln(w)
	switch {
	case p.WindowFrom == "server_trace":
		fmt.Fprintln(w, "  (the interval the server traced, from its trace: the window row counts the requests sent in it)")
	case p.Timeline != nil && p.Timeline.Clock != nil:
		fmt.Fprintf(w, "  (the window row counts the requests sent while the Profile call was open: the interval the server traced is placed only to ±%.3f ms)\n", p.Timeline.ZeroUncertaintyMs)
	}
	switch r.Saved {
	case profile.SavedLocal:
		for _, f := range r.Files {
			fmt.Fprintf(w, "  server trace written here: %s\n", f)
		}
	case profile.SavedServer:
		fmt.Fprintf(w, "  server trace saved by the SERVER on its own disk: %s\n", r.ServerPath)
		fmt.Fprintf(w, "  (not on this machine; copy it into %s to open it here)\n", profile.Store{LogDir: r.LogDir, Run: r.Run}.Dir())
	default:
		if len(r.NotWritten) == 0 {
			fmt.Fprintln(w, "  no server trace was captured")
		}
	}
	for _, f := range r.NotWritten {
		fmt.Fprintf(w, "  server trace captured but NOT written to %s (the error is below)\n", f)
	}
	if r.EmptyTrace {
		fmt.Fprintf(w, "  the server reported an EMPTY trace after %d attempt(s)\n", r.Attempts)
	}
	if p.ClientTrace != "" {
		fmt.Fprintf(w, "  client trace (one event per request): %s\n", p.ClientTrace)
	}
	if r.Saved == profile.SavedLocal || p.ClientTrace != "" {
		fmt.Fprintf(w, "  open with: tensorboard --logdir %s  (Profile tab, run %s)\n", r.LogDir, r.Run)
	}
	writeTimeline(w, p.Timeline)
	if p.Error != "" {
		fmt.Fprintf(w, "  profile: %s\n", p.Error)
	}
	if len(p.TopOps) > 0 {
		fmt.Fprintln(w)
		profile.Summary{SpanMs: p.SpanMs, Ops: p.TopOps, Planes: planesOf(p.TopOps), Stats: p.Planes}.Write(w, 10)
	}
}

func planesOf(ops []profile.Op) []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range ops {
		if !seen[op.Plane] {
			seen[op.Plane] = true
			out = append(out, op.Plane)
		}
	}
	return out
}
