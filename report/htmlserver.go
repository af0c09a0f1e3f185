package report

import (
	"fmt"
	"sort"
	"strings"
)

// serverRow is one line of a run's "What the server measured" table: a
// figure as the server measured it beside the client's.
type serverRow struct {
	Key, Label, Server, Client, Note string
}

// serverChart is the server's p99 and mean per interval between scrapes,
// beside the client's over the same seconds; x is the interval's middle.
type serverChart struct {
	Time         []float64  `json:"time"`
	ServerP99Ms  []*float64 `json:"server_p99_ms"`
	ClientP99Ms  []*float64 `json:"client_p99_ms"`
	ServerMeanMs []*float64 `json:"server_mean_ms"`
	ClientMeanMs []*float64 `json:"client_mean_ms"`
}

func serverChartOf(s *ServerReport) *serverChart {
	if s == nil || len(s.Intervals) == 0 {
		return nil
	}
	c := &serverChart{}
	short := shortInterval(s.Intervals)
	for _, iv := range s.Intervals {
		if iv.EndS-iv.StartS < short {
			// A sliver between two close scrapes (one at the steady
			// phase's end, say) holds a few requests: a point of noise.
			continue
		}
		c.Time = append(c.Time, (iv.StartS+iv.EndS)/2)
		var p99 *float64
		if iv.P99 != nil {
			v := iv.P99.Ms
			p99 = &v
		}
		c.ServerP99Ms = append(c.ServerP99Ms, p99)
		c.ClientP99Ms = append(c.ClientP99Ms, iv.ClientP99Ms)
		c.ServerMeanMs = append(c.ServerMeanMs, iv.MeanMs)
		c.ClientMeanMs = append(c.ClientMeanMs, iv.ClientMeanMs)
	}
	return c
}

// shortInterval is the length under which the chart leaves an interval
// out: half the median interval.
func shortInterval(ivs []ServerInterval) float64 {
	d := make([]float64, len(ivs))
	for i, iv := range ivs {
		d[i] = iv.EndS - iv.StartS
	}
	sort.Float64s(d)
	return d[len(d)/2] / 2
}

// serverRows are the server block's figures for the page's table.
func serverRows(r *Result) []serverRow {
	s := r.Server
	if s == nil {
		return nil
	}
	var rows []serverRow
	if s.Requests != nil {
		rows = append(rows, serverRow{Key: "requests", Label: "requests", Server: formatCount(*s.Requests), Client: fmt.Sprint(r.Requests),
			Note: trimColon(requestsNote(r))})
	}
	withheld := Withheld(r)
	if withheld != "" && (s.LatencyMs != nil || s.OutsideMs != nil) {
		rows = append(rows, serverRow{Key: "withheld", Label: "latency, outside the server", Server: "-", Note: withheld})
	}
	if l := s.LatencyMs; l != nil && withheld == "" {
		c := r.LatencyOK
		rows = append(rows, serverRow{Key: "mean", Label: "latency mean (ms)", Server: FormatMs(l.Mean), Client: FormatMs(c.Mean), Note: "server: " + l.Family + "; client: successful requests"})
		for _, q := range []struct {
			key    string
			q      *ServerQuantile
			client float64
		}{{"p50", l.P50, c.P50}, {"p90", l.P90, c.P90}, {"p99", l.P99, c.P99}} {
			if q.q == nil {
				continue
			}
			rows = append(rows, serverRow{Key: q.key, Label: "latency " + q.key + " (ms)", Server: strings.TrimSuffix(strings.Replace(QuantileText(q.q), " ms ", " ", 1), " ms"), Client: FormatMs(q.client),
				Note: "the server's estimate lies in the bucket in brackets"})
		}
	}
	if withheld == "" && OutsideNone(r) {
		rows = append(rows, serverRow{Key: "outside", Label: "outside the server (ms)", Server: "-", Note: NegativeOutside(r)})
	} else if s.OutsideMs != nil && withheld == "" {
		rows = append(rows, serverRow{Key: "outside", Label: "outside the server (ms)", Server: FormatMs(*s.OutsideMs),
			Note: "the client's mean minus the server's: network, tunnel, proxy, the client itself"})
	}
	for _, l := range []struct {
		key, label string
		l          *ServerLatency
	}{{"queue", "queueing mean (ms)", s.QueueMs}, {"compute", "compute mean (ms)", s.ComputeMs}} {
		if l.l != nil {
			rows = append(rows, serverRow{Key: l.key, Label: l.label, Server: FormatMs(l.l.Mean), Note: l.l.Family})
		}
	}
	if s.BatchSizeMean != nil {
		rows = append(rows, serverRow{Key: "batch", Label: "items per executed batch", Server: fmt.Sprintf("%.2f", *s.BatchSizeMean)})
	}
	if s.GPUUtilPct != nil {
		rows = append(rows, serverRow{Key: "gpu", Label: "GPU utilisation", Server: fmt.Sprintf("%.0f%%", *s.GPUUtilPct), Note: "mean over GPUs and scrapes"})
	}
	if s.GPUMemUsedBytes != nil {
		rows = append(rows, serverRow{Key: "gpu-memory", Label: "GPU memory used", Server: fmt.Sprintf("%.0f MiB", *s.GPUMemUsedBytes/(1<<20))})
	}
	if s.GPUPowerW != nil {
		rows = append(rows, serverRow{Key: "gpu-power", Label: "GPU power", Server: fmt.Sprintf("%.0f W", *s.GPUPowerW)})
	}
	// Several endpoints counting requests: each says its own, beside the
	// head's (the count nearest the client's).
	if eps := countingEndpoints(s); len(eps) > 1 {
		for i, ep := range eps {
			row := serverRow{Key: fmt.Sprintf("endpoint-%d", i), Label: "requests at " + ep.URL, Server: formatCount(*ep.Steady.Requests), Client: fmt.Sprint(r.Requests)}
			if l := ep.Steady.LatencyMs; l != nil {
				row.Note = "latency " + latencyLine(l)
			}
			if ep.URL == s.Head {
				row.Note = "the figures above; " + row.Note
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// profileServerRows are the server's figures over the profile window
// beside the client's requests sent while it was open (Result.Window):
// what the trace shows, as both sides counted and timed it. Nil without
// a window or without the server's figures over it.
func profileServerRows(r *Result) []serverRow {
	if r.Server == nil || r.Server.Profile == nil || r.Window == nil {
		return nil
	}
	p, c := r.Server.Profile, r.Window
	if p.Requests == nil && p.LatencyMs == nil {
		return nil
	}
	var rows []serverRow
	if p.Requests != nil {
		rows = append(rows, serverRow{Key: "requests", Label: "requests", Server: formatCount(*p.Requests), Client: fmt.Sprint(c.Requests),
			Note: "client: the steady requests sent while the window was open; a few in flight at its edges may count on either side"})
	}
	if withheld := LagWithheld(p); withheld != "" {
		if p.LatencyMs != nil {
			rows = append(rows, serverRow{Key: "withheld", Label: "latency, outside the server", Server: "-", Note: withheld})
		}
		return rows
	}
	l := p.LatencyMs
	if l == nil || l.Count == 0 {
		return rows
	}
	ok := c.LatencyOK
	rows = append(rows, serverRow{Key: "mean", Label: "latency mean (ms)", Server: FormatMs(l.Mean), Client: FormatMs(ok.Mean), Note: "server: " + l.Family + "; client: successful window requests"})
	for _, q := range []struct {
		key    string
		q      *ServerQuantile
		client float64
	}{{"p50", l.P50, ok.P50}, {"p90", l.P90, ok.P90}, {"p99", l.P99, ok.P99}} {
		if q.q != nil {
			rows = append(rows, serverRow{Key: q.key, Label: "latency " + q.key + " (ms)", Server: strings.TrimSuffix(strings.Replace(QuantileText(q.q), " ms ", " ", 1), " ms"), Client: FormatMs(q.client),
				Note: "the server's estimate lies in the bucket in brackets"})
		}
	}
	if ok.Count > 0 {
		outside := ok.Mean - l.Mean
		row := serverRow{Key: "outside", Label: "outside the server (ms)", Server: FormatMs(outside), Note: "the client's window mean minus the server's"}
		if outside < 0 {
			row.Server, row.Note = "-", "none: the server's mean exceeds the client's over the window, so they do not measure the same requests"
		}
		rows = append(rows, row)
	}
	for _, ql := range []struct {
		key, label string
		l          *ServerLatency
	}{{"queue", "queueing mean (ms)", p.QueueMs}, {"compute", "compute mean (ms)", p.ComputeMs}} {
		if ql.l != nil {
			rows = append(rows, serverRow{Key: ql.key, Label: ql.label, Server: FormatMs(ql.l.Mean), Note: ql.l.Family})
		}
	}
	return rows
}

func trimColon(s string) string {
	if len(s) > 2 && s[:2] == ": " {
		return s[2:]
	}
	return s
}
