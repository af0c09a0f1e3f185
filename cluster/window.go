package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// coordWindow is the one profile window of a coordinated run: the
// coordinator opens it at the time every worker was told, under their
// combined load.
type coordWindow struct {
	cfg    bench.ProfileConfig
	open   time.Time // coordinator's clock
	length time.Duration
	done   chan struct{}
	rep    *report.ProfileReport
	err    error
}

// openWindow starts the capture at the agreed time.
func (c *coordinator) openWindow(ctx context.Context, run bench.Config) *coordWindow {
	p := *run.Profile
	if p.Options.Grace == 0 {
		p.Options.Grace = run.Plan.Grace
	}
	c.mu.Lock()
	at := *c.window
	c.mu.Unlock()
	w := &coordWindow{cfg: p, open: at.Open, length: at.Length, done: make(chan struct{}), rep: &report.ProfileReport{WindowFrom: "profile_call"}}
	tlsConfig, tlsErr := run.TLS.Config()
	go func() {
		defer close(w.done)
		if tlsErr != nil {
			w.fail(tlsErr)
			return
		}
		t := time.NewTimer(time.Until(w.open))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			w.fail(fmt.Errorf("profile %s: interrupted before the window opened", w.where()))
			return
		}
		if p.HTTP != "" {
			w.runHTTP(ctx, tlsConfig)
			return
		}
		creds := insecure.NewCredentials()
		if tlsConfig != nil {
			creds = credentials.NewTLS(tlsConfig)
		}
		conn, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			w.fail(fmt.Errorf("profile %s: %w", p.Addr, err))
			return
		}
		defer conn.Close()
		res, err := profile.Capture(ctx, conn, p.Addr, p.Options)
		w.rep.Result = res
		if err != nil {
			w.fail(err)
		}
	}()
	return w
}

// runHTTP is the window through vLLM's HTTP profiler control
// (--profile-http): /start_profile at the agreed open, /stop_profile at
// its end, or at once when ctx ends inside it. The workers count the
// requests they send in the agreed window; the server traces from
// /start_profile's answer (http.started) to the stop. The stop goes out on
// a context of its own: a server left profiling grows its trace until it
// runs out of memory.
func (w *coordWindow) runHTTP(ctx context.Context, tlsConfig *tls.Config) {
	// An interrupt bounds the waits for either call, as in one machine's
	// run: --grace after it, nothing after a second one.
	cut, stopWatching := bench.InterruptCut(ctx, w.cfg.Options.Grace)
	defer stopWatching()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: nil}}
	defer client.CloseIdleConnections()
	ctl := &profile.HTTPProfiler{Base: w.cfg.HTTP, Client: client}
	prefix := profile.HTTPRunPrefix(time.Now())
	hw := &profile.HTTPWindow{Backend: profile.BackendVLLMHTTP, URL: w.cfg.HTTP, Prefix: prefix}
	w.rep.HTTP = hw
	slack := w.cfg.HTTPSlack()
	startCtx, cancelStart := cutContext(ctx, slack, cut)
	err := ctl.Start(startCtx, prefix)
	interrupted := cutBefore(cut)
	cancelStart()
	if err != nil {
		if interrupted {
			// The server may have taken the start: stop it, briefly.
			stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), bench.AbandonedStopBound)
			stopErr := ctl.Stop(stopCtx)
			cancelStop()
			then := "a stop was sent"
			if stopErr != nil {
				then = fmt.Sprintf("the stop sent after it failed too (%v)", stopErr)
			}
			err = fmt.Errorf("profile %s/start_profile: no answer when the interrupted run stopped waiting (--grace, or a second interrupt): no window was opened; %s", w.cfg.HTTP, then)
		}
		w.fail(err)
		return
	}
	hw.Started = time.Now()
	t := time.NewTimer(time.Until(w.open.Add(w.length)))
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		hw.Interrupted = true
	}
	stopCtx, cancelStop := cutContext(ctx, slack, cut)
	defer cancelStop()
	hw.StopSent = time.Now()
	err = ctl.Stop(stopCtx)
	hw.StopMs = float64(time.Since(hw.StopSent).Microseconds()) / 1e3
	var noAnswer *url.Error
	if !errors.As(err, &noAnswer) {
		hw.Stopped = time.Now() // it answered, with 200 or a status
	}
	if err != nil {
		switch {
		case cutBefore(cut):
			err = fmt.Errorf("profile %s/stop_profile: no answer in %.1fs when the interrupted run stopped waiting (--grace, or a second interrupt): the server may still be writing its trace, or still profiling", w.cfg.HTTP, hw.StopMs/1e3)
		case stopCtx.Err() != nil:
			err = fmt.Errorf("profile %s/stop_profile: no answer in %v (--profile-timeout): the server may still be writing its trace, or still profiling", w.cfg.HTTP, slack)
		}
		w.fail(err)
		return
	}
	hw.Trace = profile.TraceHint(prefix)
}

// cutContext is a context for one call of the HTTP control: bounded by
// slack, not cancelled by the interrupt itself (a call the server took
// must be known), but ended when cut closes.
func cutContext(ctx context.Context, slack time.Duration, cut <-chan struct{}) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), slack)
	go func() {
		select {
		case <-cut:
			cancel()
		case <-c.Done():
		}
	}()
	return c, cancel
}

// cutBefore says whether cut has closed.
func cutBefore(cut <-chan struct{}) bool {
	select {
	case <-cut:
		return true
	default:
		return false
	}
}

// where names the profiler in messages.
func (w *coordWindow) where() string {
	if w.cfg.HTTP != "" {
		return w.cfg.HTTP
	}
	return w.cfg.Addr
}

func (w *coordWindow) fail(err error) {
	w.err = err
	w.rep.Error = err.Error()
}

// finish waits for the capture (bounded), writes the client plane (a
// group of lines for each worker, every worker's requests on the
// coordinator's clock) and summarises the trace. origin is the merged
// result's start, from which its window times count.
func (w *coordWindow) finish(perWorker [][]profile.ClientEvent, truncated bool, origin, closedAt time.Time) *report.ProfileReport {
	o := w.cfg.Options
	end := w.open.Add(w.length)
	if !closedAt.IsZero() && closedAt.Before(end) {
		// Closed early (interrupted): the window is what it really
		// was, and its requests those sent before it closed.
		end = closedAt
		for i, evs := range perWorker {
			perWorker[i] = slices.DeleteFunc(slices.Clone(evs), func(e profile.ClientEvent) bool { return e.Sent.After(end) })
		}
	}
	startS, endS := w.open.Sub(origin).Seconds(), end.Sub(origin).Seconds()
	bound := time.Until(w.open) + o.Duration + o.Slack + 10*time.Second
	if w.cfg.HTTP != "" {
		// The start and the stop may each take --profile-timeout.
		bound = time.Until(w.open) + w.length + 2*w.cfg.HTTPSlack() + 10*time.Second
	}
	select {
	case <-w.done:
	case <-time.After(bound):
		// The capture goroutine still owns w.rep.
		return &report.ProfileReport{WindowStartS: startS, WindowEndS: endS, WindowFrom: "profile_call",
			Error: fmt.Sprintf("profile %s: the capture did not return", w.where())}
	}
	w.rep.WindowStartS, w.rep.WindowEndS = startS, endS
	res := w.rep.Result
	if res == nil {
		return w.rep
	}
	if files := res.TraceFiles(); len(files) > 0 {
		sum, err := profile.SummarizeFiles(files)
		if err != nil && w.err == nil {
			w.fail(fmt.Errorf("summarising the trace: %w", err))
		}
		w.rep.SpanMs, w.rep.TopOps, w.rep.Planes = sum.SpanMs, sum.Top(20), sum.Stats
	}
	if err := w.writeClientPlane(res, perWorker, truncated); err != nil && w.err == nil {
		w.fail(err)
	}
	return w.rep
}

// writeClientPlane places every worker's window requests on the server's
// timeline (one offset for all: they are on the coordinator's clock) and
// writes them as one client plane with a group of lines per worker.
func (w *coordWindow) writeClientPlane(res *profile.Result, perWorker [][]profile.ClientEvent, truncated bool) error {
	var all []profile.ClientEvent
	for _, evs := range perWorker {
		all = append(all, evs...)
	}
	o := w.cfg.Options
	if len(all) == 0 || o.LogDir == "" {
		return nil
	}
	window := o.Duration
	if window <= 0 {
		window = profile.DefaultDuration
	}
	names := w.cfg.RequestEvents
	if len(names) == 0 {
		names = profile.DefaultRequestEvents
	}
	call := profile.ProfileCall{Sent: res.Started, Answered: res.Finished, Window: window}
	var server *profile.ServerTrace
	var readErr error
	if files := res.TraceFiles(); len(files) > 0 {
		tr, err := profile.ReadServerTrace(files, names)
		if err == nil {
			server = &tr
		}
		readErr = err
	}
	tl := profile.Align(call, server, all)
	tl.RequestEvents = names
	tl.ClientTruncated = truncated
	space := workerPlanes(&tl, perWorker)
	data, err := proto.Marshal(space)
	if err == nil {
		var path string
		path, err = profile.Store{LogDir: o.LogDir, Run: res.Run}.Write(profile.ClientFile, data)
		w.rep.ClientTrace = path
	}
	if res.Saved != profile.SavedNone {
		w.rep.Timeline = &tl
	}
	if err != nil {
		return fmt.Errorf("writing the client trace: %w", err)
	}
	if readErr != nil {
		return fmt.Errorf("reading the server's clock from its trace: %w", readErr)
	}
	return nil
}

// WorkerLineName is the name of lane k (1-based) of worker i's requests
// in a coordinated run's client plane: the lines of one worker sort
// together, and the summary skips them as loadprof's own.
func WorkerLineName(worker, lane int) string {
	return fmt.Sprintf("%sw%d.%d (worker %d)", profile.ClientLinePrefix, worker, lane, worker)
}

// workerPlanes is the client plane of every worker, one plane whose lines
// are grouped by worker: each worker's requests are laid out on lanes of
// their own (two requests of one worker never share a line, nor do two
// workers).
func workerPlanes(tl *profile.Timeline, perWorker [][]profile.ClientEvent) *tfproto.XSpace {
	var out *tfproto.XSpace
	var plane *tfproto.XPlane
	notDrawn := 0
	for i, evs := range perWorker {
		space := tl.ClientPlane(evs, "loadprof-client")
		notDrawn += tl.NotDrawn
		p := space.GetPlanes()[0]
		lines := p.Lines
		if out == nil {
			out, plane = space, p
			plane.Lines = nil
		}
		// Metadata ids are per plane: map this worker's onto the shared
		// plane's by name.
		ids := map[int64]int64{}
		for id, md := range p.EventMetadata {
			ids[id] = metadataID(plane, md.Name)
		}
		for k, l := range lines {
			l.Id = int64(len(plane.Lines) + 1)
			l.Name = WorkerLineName(i+1, k+1)
			for _, e := range l.Events {
				e.MetadataId = ids[e.MetadataId]
			}
			plane.Lines = append(plane.Lines, l)
		}
	}
	tl.NotDrawn = notDrawn
	if out == nil {
		out = &tfproto.XSpace{}
	}
	return out
}

// metadataID is the id of the event metadata called name in plane,
// added when it has none.
func metadataID(plane *tfproto.XPlane, name string) int64 {
	for id, md := range plane.EventMetadata {
		if md.Name == name {
			return id
		}
	}
	id := int64(len(plane.EventMetadata) + 1)
	for plane.EventMetadata[id] != nil {
		id++
	}
	plane.EventMetadata[id] = &tfproto.XEventMetadata{Id: id, Name: name}
	return id
}
