package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/loadprof/loadprof/profile"
)

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
		fmt.Fprintln(w, "  (the window held more requests than loadprof keeps one by one: the client trace and the split cover the first ones)")
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
