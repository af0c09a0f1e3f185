package report

import (
	"fmt"
	"io"

	"github.com/loadprof/loadprof/profile"
)

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
	// HTTP is a window opened through vLLM's HTTP profiler control (the
	// backend, prefix, start and stop); Result is nil then.
	HTTP *profile.HTTPWindow `json:"http,omitempty"`
}

// WriteProfileSummary prints where the trace is and its top ops.
func WriteProfileSummary(w io.Writer, p *ProfileReport) {
	fmt.Fprintln(w)
	if p.HTTP != nil {
		writeHTTPWindow(w, p)
		return
	}
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
	if r.Saved == profile.SavedLocal {
		// Only the client's plane is no profile to open.
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

// writeHTTPWindow prints a window of vLLM's HTTP profiler control: the
// trace is on the server's disk, so where it is, by name.
func writeHTTPWindow(w io.Writer, p *ProfileReport) {
	h := p.HTTP
	if h.Started.IsZero() {
		fmt.Fprintf(w, "  profile: FAILED: %s\n", p.Error)
		return
	}
	fmt.Fprintf(w, "  profile window %.3fs..%.3fs on %s (POST /start_profile, /stop_profile), prefix %s", p.WindowStartS, p.WindowEndS, h.URL, h.Prefix)
	if h.Interrupted {
		fmt.Fprint(w, " (ended early)")
	}
	fmt.Fprintln(w)
	if !h.Stopped.IsZero() {
		fmt.Fprintf(w, "  /stop_profile answered in %.0f ms\n", h.StopMs)
	}
	if h.Trace != "" {
		fmt.Fprintf(w, "  the server wrote its trace %s (on the server's disk, not this machine)\n", h.Trace)
	}
	if p.Error != "" {
		fmt.Fprintf(w, "  profile: %s\n", p.Error)
	}
}
