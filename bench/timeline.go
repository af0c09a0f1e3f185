package bench

import (
	"fmt"

	"github.com/loadprof/loadprof/profile"
	"google.golang.org/protobuf/proto"
)

// writeClientPlane writes loadprof's client plane beside the server's
// trace, on the server's timeline: the clock offset is estimated from the
// Profile call and the server's request events, and the latency of the
// window's requests is split around those events.
func (w *window) writeClientPlane(res *profile.Result) error {
	samples := w.rec.WindowSamples()
	o := w.cfg.Options
	if len(samples) == 0 || o.LogDir == "" {
		return nil
	}
	origin := w.rec.Origin()
	events := make([]profile.ClientEvent, len(samples))
	for i, s := range samples {
		events[i] = profile.ClientEvent{Start: origin.Add(s.Start), Sent: origin.Add(s.Sent), End: origin.Add(s.Done), Status: s.Outcome.Key().String()}
	}
	window := o.Duration
	if window <= 0 {
		window = profile.DefaultDuration
	}
	call := profile.ProfileCall{Sent: res.Started, Answered: res.Finished, Window: window}
	var server *profile.ServerTrace
	var readErr error
	names := w.cfg.RequestEvents
	if len(names) == 0 {
		names = profile.DefaultRequestEvents
	}
	if files := res.TraceFiles(); len(files) > 0 {
		tr, err := profile.ReadServerTrace(files, names)
		if err == nil {
			server = &tr
		}
		readErr = err
	}
	tl := profile.Align(call, server, events)
	tl.RequestEvents = names
	tl.ClientTruncated = w.rec.WindowTruncated()
	data, err := proto.Marshal(tl.ClientPlane(events, "loadprof-client"))
	if err == nil {
		var path string
		path, err = profile.Store{LogDir: o.LogDir, Run: res.Run}.Write(profile.ClientFile, data)
		w.report.ClientTrace = path
	}
	if res.Saved != profile.SavedNone {
		// Nothing captured: no server timeline to speak of (review: the
		// summary placed the plane "by the Profile call's timing" for a
		// capture that failed at once).
		w.report.Timeline = &tl
	}
	if err != nil {
		return fmt.Errorf("writing the client trace: %w", err)
	}
	if readErr != nil {
		return fmt.Errorf("reading the server's clock from its trace: %w", readErr)
	}
	return nil
}

// narrowToServerWindow makes the window's statistics those of the requests
// sent while the server traced, once the timeline places its interval
// well: the Profile call runs longer (the server starts after the call
// arrives, and the answer carries the trace, seconds for a big one over a
// tunnel), and requests sent after the server stopped tracing would
// dilute the window against outside.
func (w *window) narrowToServerWindow() {
	w.report.WindowFrom = "profile_call"
	tl := w.report.Timeline
	if tl == nil {
		return
	}
	from, to, ok := tl.ServerWindow()
	if !ok || tl.ZeroUncertaintyMs > max(1, 0.02*float64(to.Sub(from).Milliseconds())) {
		return
	}
	origin := w.rec.Origin()
	if w.rec.NarrowWindow(from.Sub(origin), to.Sub(origin)) {
		w.report.WindowFrom = "server_trace"
		w.report.WindowStartS, w.report.WindowEndS = from.Sub(origin).Seconds(), to.Sub(origin).Seconds()
	}
}
