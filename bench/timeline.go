package bench

import (
	"time"

	"fmt"
	"github.com/loadprof/loadprof/load"
	"io"
	"strings"

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
	w.report.Timeline = &tl
	if err != nil {
		return fmt.Errorf("writing the client trace: %w", err)
	}
	if readErr != nil {
		return fmt.Errorf("reading the server's clock from its trace: %w", readErr)
	}
	return nil
}

// writeTimeline prints the clock offset, where the client plane is and how
// the client's latency splits.
func writeTimeline(w io.Writer, tl *profile.Timeline) {
	if tl == nil {
		return
	}
	if c := tl.Clock; c != nil && c.Relative {
		zero := time.Unix(0, -int64(c.OffsetMs*1e6)).UTC()
		fmt.Fprintf(w, "  the server's trace counts from its own zero (it records no start): that zero is at %s on this machine's clock, ±%.3f ms\n", zero.Format("15:04:05.000000"), c.UncertaintyMs)
	} else if c != nil {
		fmt.Fprintf(w, "  clock offset (server - client): %+.3f ms, within %.3f..%.3f ms", c.OffsetMs, c.MinMs, c.MaxMs)
		switch c.Method {
		case profile.OffsetFromRequests:
			fmt.Fprintf(w, " (from %d %q events, %d inside a client request; the Profile call alone gave %.3f..%.3f ms)\n",
				c.ServerRequests, c.RequestEvent, c.Inside, c.CallMinMs, c.CallMaxMs)
		default:
			fmt.Fprintf(w, " (from the Profile call's timing")
			if c.RequestEvent == "" {
				fmt.Fprintf(w, "; the trace has none of the request events %s (--profile-request-events)", strings.Join(tl.RequestEvents, ", "))
			}
			fmt.Fprintln(w, ")")
		}
	}
	if c := tl.Clock; c != nil && c.Note != "" {
		fmt.Fprintf(w, "  (%s)\n", c.Note)
	}
	if tl.ClientTruncated {
		fmt.Fprintf(w, "  (the window held more than %d requests: the client trace and the split cover the first %d)\n", load.MaxWindowEvents, load.MaxWindowEvents)
	}
	switch tl.Placement {
	case profile.PlacedAtServerStart:
		fmt.Fprintf(w, "  client plane on the server's timeline (±%.3f ms)\n", tl.ZeroUncertaintyMs)
	case profile.PlacedAtEstimatedStart:
		fmt.Fprintf(w, "  client plane placed by the Profile call's timing only (±%.3f ms)\n", tl.ZeroUncertaintyMs)
	}
	if tl.Note != "" {
		fmt.Fprintf(w, "  (%s)\n", tl.Note)
	}
	if tl.NotDrawn > 0 {
		fmt.Fprintf(w, "  (%s over before the server's window started: not in the client plane)\n", plural(tl.NotDrawn, "window request was", "window requests were"))
	}
	if s := tl.Split; s != nil {
		fmt.Fprintf(w, "  latency split: %d of %d window requests matched to a server request event (%d in the trace)\n", s.Matched, s.ClientRequests, s.ServerRequests)
		if s.Ambiguous > 0 {
			fmt.Fprintf(w, "    (%d of those events fit in more than one request in flight: matched first come, first served)\n", s.Ambiguous)
		}
		if s.Matched > 0 && !s.Reliable {
			fmt.Fprintf(w, "    (not reliable: the clock is known to ±%.3f ms, more than half the time between requests, so events may be paired with a neighbour's request)\n", tl.Clock.UncertaintyMs)
		}
		if s.Matched > 0 {
			fmt.Fprintf(w, "    %-26s %9s %9s %9s %9s\n", "ms", "p50", "p90", "p99", "max")
			rows := []struct {
				name string
				p    profile.Percentiles
			}{{"client latency", s.ClientMs}}
			if s.SendLagMs.Max > 0 {
				rows = append(rows, struct {
					name string
					p    profile.Percentiles
				}{"send lag (client, unsent)", s.SendLagMs})
			}
			rows = append(rows, struct {
				name string
				p    profile.Percentiles
			}{"inside the server's event", s.ServerMs}, struct {
				name string
				p    profile.Percentiles
			}{"outside it, once sent", s.OutsideMs})
			for _, row := range rows {
				fmt.Fprintf(w, "    %-26s %9.3f %9.3f %9.3f %9.3f\n", row.name, row.p.P50, row.p.P90, row.p.P99, row.p.Max)
			}
		}
	}
}

// plural is "1 thing was" or "n things were".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
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
