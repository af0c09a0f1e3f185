package report

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// writeServerSummary prints what the server's metrics said over the
// steady phase beside what the client measured.
func writeServerSummary(w io.Writer, r *Result) {
	s := r.Server
	if s == nil {
		return
	}
	fmt.Fprintln(w)
	what := s.Server
	if what == "" {
		what = "metrics"
	}
	model := ""
	if s.Model != "" {
		model = ", model " + s.Model
	}
	fmt.Fprintf(w, "  server (%s%s, over %s, %s):\n", what, model, windowLabel(r), endpointList(s.Endpoints))
	if s.Requests == nil && s.LatencyMs == nil {
		if why := WrongModel(s); why != "" {
			fmt.Fprintln(w, "    no request figures: "+why)
		} else if scraped(s.Endpoints) {
			fmt.Fprintln(w, "    no request figures: the endpoints exported no family loadprof knows for requests")
		} else {
			fmt.Fprintln(w, "    no figures: no scrape succeeded (result.json's server.warnings say why)")
		}
	} else {
		for _, line := range ServerLines(r) {
			fmt.Fprintln(w, "    "+line)
		}
		for _, line := range CountingEndpointLines(s) {
			fmt.Fprintln(w, "    "+line)
		}
	}
	if p := s.Profile; p != nil && p.Requests != nil {
		line := fmt.Sprintf("    profile window (%.1f-%.1f s): server %s requests", p.StartS, p.EndS, formatCount(*p.Requests))
		if p.LatencyMs != nil {
			line += ", mean " + FormatMs(p.LatencyMs.Mean) + " ms"
			if l := s.LatencyMs; l != nil {
				line += " (steady phase " + FormatMs(l.Mean) + " ms)"
			}
		}
		fmt.Fprintln(w, line)
	}
	if note := KServeNote(s); note != "" {
		fmt.Fprintln(w, "    note: "+note)
	}
	for _, note := range markLagNotes(s) {
		fmt.Fprintln(w, "    note: "+note)
	}
	for _, ep := range s.Endpoints {
		if ep.FailedScrapes > 0 {
			fmt.Fprintf(w, "    warning: %s: %d of %d scrapes failed; the load's results stand\n", ep.URL, ep.FailedScrapes, ep.Scrapes)
		}
	}
}

// WrongModel is the warning that the server's request families were
// exported for other models than the one loadprof filtered on, or "".
func WrongModel(s *ServerReport) string {
	for _, msg := range s.Warnings {
		if strings.Contains(msg, " is exported for model(s) ") {
			return msg
		}
	}
	return ""
}

// KServeNote says, when the server's latency is KServe's
// request_predict_seconds, that it times predict() alone, so that the time
// outside the server holds KServe's own HTTP, JSON and pre/postprocess
// time; with the means of the pre/postprocess families when exported.
func KServeNote(s *ServerReport) string {
	if s.LatencyMs == nil || s.LatencyMs.Family != "request_predict_seconds" {
		return ""
	}
	note := "KServe's request_predict_seconds times only the model's predict(): outside the server includes KServe's HTTP, JSON decoding and encoding, preprocess and postprocess time"
	var stages []string
	for _, f := range s.Families {
		if (f.Name == "request_preprocess_seconds" || f.Name == "request_postprocess_seconds") && f.Mean != nil && f.Count > 0 {
			stages = append(stages, strings.TrimSuffix(strings.TrimPrefix(f.Name, "request_"), "_seconds")+" mean "+FormatMs(*f.Mean)+" ms")
		}
	}
	if len(stages) > 0 {
		note += " (" + strings.Join(stages, ", ") + ")"
	}
	return note
}

// markLagShare is the part of a window a mark's scrape may lag behind
// the mark before the summary says so.
const markLagShare = 0.05

// markLagNotes say when a scrape at the edge of the steady phase or of
// the profile window was answered late enough (a slow server, or behind a
// scrape under way) that the server's window is not quite the client's:
// requests that ended in the lag may count on the other side of the edge.
func markLagNotes(s *ServerReport) []string {
	var out []string
	for _, w := range []*ServerWindow{&s.ServerWindow, s.Profile} {
		if w == nil || w.EndS <= w.StartS {
			continue
		}
		span := (w.EndS - w.StartS) * 1e3
		phase := "steady phase"
		if w.Window == "profile" {
			phase = "profile window"
		}
		for _, e := range []struct {
			edge string
			lag  *float64
		}{{"start", w.StartLagMs}, {"end", w.EndLagMs}} {
			if e.lag == nil || *e.lag < markLagShare*span || *e.lag > withheldLagShare*span {
				continue // a lag past withheldLagShare is said where the figures are withheld
			}
			out = append(out, fmt.Sprintf("the scrape at the %s's %s was answered %.0f ms after it, %.0f%% of the server's %.1f s window: its figures cover a slightly different span than the client's",
				phase, e.edge, *e.lag, 100**e.lag/span, span/1e3))
		}
	}
	return out
}

// withheldLagShare is the part of the window a mark's scrape may lag
// before the server's latency and the figure outside it are withheld:
// past it the server's window is another span than the client's, and
// their difference is no time spent outside the server.
const withheldLagShare = 0.25

// LagWithheld says why the server's latency figures of w are withheld,
// or "" when they stand: a scrape at an edge of w was answered later
// than withheldLagShare of it.
func LagWithheld(w *ServerWindow) string {
	if w == nil || w.EndS <= w.StartS {
		return ""
	}
	span := (w.EndS - w.StartS) * 1e3
	for _, e := range []struct {
		edge string
		lag  *float64
	}{{"start", w.StartLagMs}, {"end", w.EndLagMs}} {
		if e.lag != nil && *e.lag > withheldLagShare*span {
			return fmt.Sprintf("withheld: the scrape at the %s was answered %.0f ms after it, %.0f%% of the server's %.1f s window, so the server's figures are of another span than the client's",
				e.edge, *e.lag, 100**e.lag/span, span/1e3)
		}
	}
	return ""
}

// NegativeOutside says why a negative "outside the server" is no time:
// the server cannot take longer than the client waited for it.
func NegativeOutside(r *Result) string {
	return NegativeOutsideText(r.Server.LatencyMs.Mean, r.LatencyOK.Mean)
}

// NegativeOutsideText is NegativeOutside of the two means.
func NegativeOutsideText(serverMeanMs, clientMeanMs float64) string {
	return fmt.Sprintf("none: the server's mean %s ms exceeds the client's %s ms, so they do not measure the same requests: a wrong unit, the family of another model or server, or the server's clock",
		FormatMs(serverMeanMs), FormatMs(clientMeanMs))
}

// OutsideNone reports whether the time outside the server is no figure
// because the server's mean exceeds the client's (NegativeOutside):
// result.json then has outside_ms null (a result written before said it
// as a negative number).
func OutsideNone(r *Result) bool {
	s := r.Server
	if s == nil {
		return false
	}
	if s.OutsideMs != nil {
		return *s.OutsideMs < 0
	}
	return hasLatency(s) && r.LatencyOK.Count > 0 && s.LatencyMs.Mean > r.LatencyOK.Mean && Withheld(r) == ""
}

// windowLabel says what the server's window covers: the steady phase,
// or, when the scrapes at its edges failed, the span of the scrapes that
// answered, which may be far from the whole run.
func windowLabel(r *Result) string {
	s := r.Server
	if s.Window != "run" {
		return "the " + s.Window + " phase"
	}
	return fmt.Sprintf("the %.3f-%.3f s its scrapes answered (the steady phase's edge scrapes failed)", s.StartS, s.EndS)
}

// Withheld says why the server's latency figures and the time outside it
// are withheld, or "" when they stand: an edge scrape lagged
// (LagWithheld), or the server's window is not the client's span.
func Withheld(r *Result) string {
	if why := LagWithheld(&r.Server.ServerWindow); why != "" {
		return why
	}
	return SpanWithheld(&r.Server.ServerWindow, r.Phases.Steady.Start, r.Phases.Steady.End)
}

// SpanWithheld says why the server's latency figures of w are withheld
// when its span differs from the client's steady phase (from..to s) by
// more than withheldLagShare of it (the edge scrapes failed, and the
// window runs between whichever scrapes answered), or "".
func SpanWithheld(w *ServerWindow, from, to float64) string {
	client := to - from
	if w == nil || client <= 0 || w.EndS <= w.StartS {
		return "" // no span to tell (LagWithheld says the same)
	}
	span := w.EndS - w.StartS
	if math.Abs(span-client) <= withheldLagShare*client {
		return ""
	}
	return fmt.Sprintf("withheld: the server's scrapes span %.3f-%.3f s (%.3f s), the client's steady phase %.3f-%.3f s (%.3f s): the server's figures are of another span than the client's",
		w.StartS, w.EndS, span, from, to, client)
}

func endpointList(eps []ServerEndpoint) string {
	var urls []string
	for _, ep := range eps {
		urls = append(urls, ep.URL)
	}
	return strings.Join(urls, ", ")
}

// ServerLines are the figures of the server block as the summary and the
// HTML page say them, one line each.
func ServerLines(r *Result) []string {
	s := r.Server
	var out []string
	if s.Requests != nil {
		out = append(out, fmt.Sprintf("requests: server %s, client %d (steady)%s", formatCount(*s.Requests), r.Requests, requestsNote(r)))
	}
	withheld := Withheld(r)
	if l := s.LatencyMs; l != nil && withheld == "" {
		out = append(out, "latency:  "+latencyLine(l))
	}
	if withheld != "" && s.LatencyMs != nil {
		out = append(out, "latency and outside the server: "+withheld)
	}
	if withheld == "" && OutsideNone(r) {
		out = append(out, "outside the server: "+NegativeOutside(r))
	} else if s.OutsideMs != nil && withheld == "" {
		out = append(out, fmt.Sprintf("outside the server: %s ms (the client's mean %s ms minus the server's %s ms: network, tunnel, proxy, client)",
			FormatMs(*s.OutsideMs), FormatMs(r.LatencyOK.Mean), FormatMs(s.LatencyMs.Mean)))
	}
	if s.QueueMs != nil || s.ComputeMs != nil {
		parts := []string{}
		if s.QueueMs != nil {
			parts = append(parts, "queue "+FormatMs(s.QueueMs.Mean)+" ms")
		}
		if s.ComputeMs != nil {
			parts = append(parts, "compute "+FormatMs(s.ComputeMs.Mean)+" ms")
		}
		out = append(out, "inside:   "+strings.Join(parts, ", ")+" (means)")
	}
	if s.BatchSizeMean != nil {
		out = append(out, fmt.Sprintf("batch:    %.2f items per executed batch (mean)", *s.BatchSizeMean))
	}
	if s.GPUUtilPct != nil || s.GPUMemUsedBytes != nil || s.GPUPowerW != nil {
		parts := []string{}
		if s.GPUUtilPct != nil {
			parts = append(parts, fmt.Sprintf("%.0f%% busy", *s.GPUUtilPct))
		}
		if s.GPUMemUsedBytes != nil {
			parts = append(parts, fmt.Sprintf("%.0f MiB used", *s.GPUMemUsedBytes/(1<<20)))
		}
		if s.GPUPowerW != nil {
			parts = append(parts, fmt.Sprintf("%.0f W", *s.GPUPowerW))
		}
		out = append(out, "GPU:      "+strings.Join(parts, ", ")+" (means over the phase)")
	}
	return out
}

// requestsNote says what a difference between the two counts means. The
// server's window runs from a scrape just after the steady phase started
// to one after its last request: requests in flight at its edges can fall
// either side, a few at most.
// shortWindow says when the server's window is not the steady phase (a
// scrape at one of its edges failed): the counts cover different spans.
func shortWindow(s *ServerReport, r *Result) string {
	steady := r.Phases.Steady
	if s.EndS <= s.StartS || steady.End <= steady.Start {
		return ""
	}
	const slack = 0.25 // s: a scrape lands a little after its mark
	if s.StartS > steady.Start+slack || s.EndS < steady.End-slack {
		return fmt.Sprintf("the server's scrapes cover %.1f-%.1f s of the steady phase's %.1f-%.1f s (a scrape at its edge failed), so the counts are of different spans",
			s.StartS, s.EndS, steady.Start, steady.End)
	}
	return ""
}

// restarted reports whether a counter went down between two scrapes.
func restarted(s *ServerReport) bool {
	for _, w := range s.Warnings {
		if strings.Contains(w, "went down") {
			return true
		}
	}
	return false
}

// requestsNote says why the server's count of the steady phase differs
// from the client's: causes the scrapes themselves show (a window cut
// short, a restart) before guesses. Requests in flight at the phase's
// edges, up to the most the client held at once, are no difference.
func requestsNote(r *Result) string {
	s := r.Server
	server, client := *s.Requests, r.Requests
	d := server - float64(client)
	if d != 0 {
		if cut := shortWindow(s, r); cut != "" {
			return ": " + cut
		}
		if restarted(s) {
			return ": the server restarted during the run (its counters went down), so what it counted between the last scrape before the restart and the restart is missing"
		}
	}
	edges := math.Max(math.Max(2, 0.01*float64(client)), float64(r.Client.PeakInflight)) + endedDuringEdgeScrapes(r)
	switch {
	case d == 0:
		return ": the same"
	case math.Abs(d) <= edges:
		return fmt.Sprintf(": %+.0f, requests in flight at the phase's edges or ended while the server was scraped there", d)
	case d > 0:
		return fmt.Sprintf(": the server counted %.0f more; another client is loading it, or the model filter (--model, the URL's model) covers more than this load", d)
	}
	return fmt.Sprintf(": the server counted %.0f fewer; the wrong model (its metrics are of another), or requests that never reached it", -d)
}

// endedDuringEdgeScrapes is about how many requests the client completed
// between the steady phase's edges and the answers of the scrapes at
// them: the server read its counters somewhere in those spans, so these
// may count on either side (a busy server answers a scrape late).
func endedDuringEdgeScrapes(r *Result) float64 {
	s := &r.Server.ServerWindow
	if s.Window != "steady" || s.EndS <= s.StartS {
		return 0
	}
	lagMs := 0.0
	for _, l := range []*float64{s.StartLagMs, s.EndLagMs} {
		if l != nil {
			lagMs += *l
		}
	}
	return math.Round(float64(r.Requests) / (s.EndS - s.StartS) * lagMs / 1e3)
}

func formatCount(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func latencyLine(l *ServerLatency) string {
	parts := []string{"mean " + FormatMs(l.Mean) + " ms"}
	for _, q := range []struct {
		name string
		q    *ServerQuantile
	}{{"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}} {
		if q.q != nil {
			parts = append(parts, q.name+" "+QuantileText(q.q))
		}
	}
	return strings.Join(parts, ", ") + " (" + l.Family + ")"
}

// QuantileText is a percentile from buckets with its bucket: in the +Inf
// bucket it is only known to exceed the last bound, and no point value
// is said.
func QuantileText(q *ServerQuantile) string {
	if q.BucketHighMs == nil {
		return "> " + FormatMs(q.BucketLowMs) + " ms " + BucketBounds(q)
	}
	return FormatMs(q.Ms) + " ms " + BucketBounds(q)
}

// BucketBounds says which histogram bucket a percentile fell in: the
// estimate is only known to lie in it.
func BucketBounds(q *ServerQuantile) string {
	hi := "+Inf"
	if q.BucketHighMs != nil {
		hi = FormatMs(*q.BucketHighMs)
	}
	lo := FormatMs(q.BucketLowMs)
	if q.BucketLowMs == 0 {
		lo = "0"
	}
	return "[" + lo + "-" + hi + "]"
}

// countingEndpoints are the endpoints that counted requests over their
// window.
func countingEndpoints(s *ServerReport) []ServerEndpoint {
	var out []ServerEndpoint
	for _, ep := range s.Endpoints {
		if ep.Steady != nil && ep.Steady.Requests != nil && *ep.Steady.Requests > 0 {
			out = append(out, ep)
		}
	}
	return out
}

// CountingEndpointLines say, when several endpoints counted requests,
// whose figures head the block and each one's own: one endpoint's
// figures are never said for all of them.
func CountingEndpointLines(s *ServerReport) []string {
	eps := countingEndpoints(s)
	if len(eps) < 2 {
		return nil
	}
	out := []string{fmt.Sprintf("%d endpoints counted requests; the figures above are %s's, the count nearest the client's. Each endpoint's:", len(eps), s.Head)}
	for _, ep := range eps {
		line := fmt.Sprintf("  %s: requests %s", ep.URL, formatCount(*ep.Steady.Requests))
		if l := ep.Steady.LatencyMs; l != nil {
			line += ", latency " + latencyLine(l)
		}
		out = append(out, line)
	}
	return out
}

// scraped reports whether any endpoint answered a scrape.
func scraped(endpoints []ServerEndpoint) bool {
	for _, ep := range endpoints {
		if ep.Scrapes > ep.FailedScrapes {
			return true
		}
	}
	return false
}
