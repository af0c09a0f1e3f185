package report

import (
	"bytes"
	"strings"
	"testing"
)

func TestTheServerSectionSaysWhyTheCountsDiffer(t *testing.T) {
	for _, c := range []struct {
		server float64
		client int64
		want   string
	}{
		{1000, 1000, "requests: server 1000, client 1000 (steady): the same"},
		{1002, 1000, "requests: server 1002, client 1000 (steady): +2, requests in flight at the phase's edges"},
		{1500, 1000, "the server counted 500 more; another client is loading it"},
		{0, 1000, "the server counted 1000 fewer; the wrong model"},
	} {
		server := c.server
		r := &Result{Requests: c.client, LatencyOK: Stats{Count: c.client, Mean: 9}, Server: &ServerReport{
			ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: &server}},
			Server:       "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5, FailedScrapes: 2}},
		}}
		var b strings.Builder
		WriteSummary(&b, r)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("server %v, client %d: no %q in\n%s", c.server, c.client, c.want, b.String())
		}
		if !strings.Contains(b.String(), "warning: http://h/metrics: 2 of 5 scrapes failed; the load's results stand") {
			t.Errorf("no line for the failed scrapes:\n%s", b.String())
		}
	}
}

// What the scrapes themselves show comes before a guess: a window cut
// short by a failed scrape at its edge, or a server that restarted.
func TestTheServerSectionNamesWhatTheScrapesShow(t *testing.T) {
	summary := func(s *ServerReport) string {
		r := &Result{Requests: 400, LatencyOK: Stats{Count: 400, Mean: 9}, Server: s}
		r.Phases.Steady.Start, r.Phases.Steady.End = 1, 5
		var b strings.Builder
		WriteSummary(&b, r)
		return b.String()
	}
	hundred := 100.0
	cut := &ServerReport{ServerWindow: ServerWindow{Window: "steady", StartS: 1.004, EndS: 2.001, ServerFigures: ServerFigures{Requests: &hundred}},
		Server: "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5, FailedScrapes: 3}}}
	if got := summary(cut); !strings.Contains(got, "requests: server 100, client 400 (steady): the server's scrapes cover 1.0-2.0 s of the steady phase's 1.0-5.0 s") || strings.Contains(got, "wrong model") {
		t.Errorf("a window cut short:\n%s", got)
	}
	whole := *cut
	whole.StartS, whole.EndS = 1.004, 5.003
	whole.Warnings = []string{"http://h/metrics: :tensorflow:serving:request_count{} went down between the scrapes at 3.0 and 4.0: the server restarted"}
	if got := summary(&whole); !strings.Contains(got, "the server restarted during the run") || strings.Contains(got, "wrong model") ||
		strings.Contains(got, "counted before is lost") || !strings.Contains(got, "between the last scrape before the restart and the restart is missing") {
		t.Errorf("a restart:\n%s", got)
	}
}

// The server's own figures over the profile window are said beside the
// steady phase's: what profiling cost the server.
func TestTheServerSectionSaysTheProfileWindow(t *testing.T) {
	n, steadyN := 402.0, 1000.0
	r := &Result{Requests: 1000, LatencyOK: Stats{Count: 1000, Mean: 9}, Server: &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: &steadyN, LatencyMs: &ServerLatency{Mean: 2.5}}},
		Profile:      &ServerWindow{Window: "profile", StartS: 1.0, EndS: 3.0, ServerFigures: ServerFigures{Requests: &n, LatencyMs: &ServerLatency{Mean: 3.117}}},
		Server:       "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}},
	}}
	var b strings.Builder
	WriteSummary(&b, r)
	if want := "profile window (1.0-3.0 s): server 402 requests, mean 3.117 ms (steady phase 2.500 ms)"; !strings.Contains(b.String(), want) {
		t.Errorf("no %q in\n%s", want, b.String())
	}
}

// The page's table says what the summary says, and requests the client
// held in flight at the edges (its peak) are no difference.
func TestThePageAndTheSummaryGiveOneRequestsNote(t *testing.T) {
	server := 1129.0
	r := &Result{Requests: 1081, LatencyOK: Stats{Count: 1081, Mean: 9}, Server: &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: &server}},
		Server:       "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}}}}
	r.Client.PeakInflight = 50
	want := "+48, requests in flight at the phase's edges"
	if lines := strings.Join(ServerLines(r), "\n"); !strings.Contains(lines, want) {
		t.Errorf("summary: %s", lines)
	}
	if rows := serverRows(r); len(rows) == 0 || !strings.Contains(rows[0].Note, want) {
		t.Errorf("page: %+v", rows)
	}
}

// A scrape at a phase's edge that began late (behind a scrape under way)
// is said when its lag is a large part of the window; a small one is not.
func TestTheSummarySaysWhenAMarksScrapeLagged(t *testing.T) {
	summary := func(startLag, endLag, profileLag float64) string {
		n := 400.0
		r := &Result{Requests: 400, LatencyOK: Stats{Count: 400, Mean: 9}, Server: &ServerReport{
			ServerWindow: ServerWindow{Window: "steady", StartS: 1.3, EndS: 5.01, StartLagMs: &startLag, EndLagMs: &endLag, ServerFigures: ServerFigures{Requests: &n}},
			Profile:      &ServerWindow{Window: "profile", StartS: 2, EndS: 3, StartLagMs: &profileLag, ServerFigures: ServerFigures{Requests: &n}},
			Server:       "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}},
		}}
		r.Phases.Steady.Start, r.Phases.Steady.End = 1, 5
		var b strings.Builder
		WriteSummary(&b, r)
		return b.String()
	}
	got := summary(300, 10, 80)
	for _, want := range []string{
		"note: the scrape at the steady phase's start was answered 300 ms after it, 8% of the server's 3.7 s window",
		"note: the scrape at the profile window's start was answered 80 ms after it, 8% of the server's 1.0 s window",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "steady phase's end") {
		t.Errorf("a 10 ms lag of a 3.7 s window is said:\n%s", got)
	}
	if got := summary(10, 10, 10); strings.Contains(got, "note: the scrape") {
		t.Errorf("small lags are said:\n%s", got)
	}
}

// Requests that ended while the server was scraped at the steady phase's
// edges may count on either side: the summary's tolerance covers what
// the client completed in those spans (as MLServer showed: 5 fewer with 4
// in flight, its scrapes answered ~10 ms after the marks at 500 req/s),
// and no more.
func TestRequestsEndedDuringTheEdgeScrapesAreNoDifference(t *testing.T) {
	note := func(server float64, startLag, endLag float64) string {
		r := &Result{Requests: 300, LatencyOK: Stats{Count: 300, Mean: 7}, Server: &ServerReport{
			ServerWindow: ServerWindow{Window: "steady", StartS: 1, EndS: 1.6, StartLagMs: &startLag, EndLagMs: &endLag, ServerFigures: ServerFigures{Requests: &server}},
			Server:       "mlserver", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}}}}
		r.Client.PeakInflight = 4
		return strings.Join(ServerLines(r), "\n")
	}
	if got := note(295, 8, 4); !strings.Contains(got, "-5, requests in flight at the phase's edges or ended while the server was scraped there") {
		t.Errorf("5 fewer with 12 ms of edge scrapes at 500 req/s:\n%s", got)
	}
	if got := note(295, 0.1, 0.1); !strings.Contains(got, "the server counted 5 fewer") {
		t.Errorf("5 fewer with 4 in flight and scrapes answered at once:\n%s", got)
	}
}

// A mark's scrape answered after a large part of the window: the
// server's latency and the figure outside it are withheld, and the
// summary and page say why rather than calling the span slightly
// different.
func TestALargeMarkLagWithholdsTheLatencyFigures(t *testing.T) {
	n, outside, lag, small := 400.0, 5.0, 1500.0, 10.0
	r := &Result{Requests: 400, LatencyOK: Stats{Count: 400, Mean: 9}, Server: &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", StartS: 1.3, EndS: 5.0, StartLagMs: &small, EndLagMs: &lag,
			ServerFigures: ServerFigures{Requests: &n, LatencyMs: &ServerLatency{Family: "f", Count: 400, Mean: 4}}},
		OutsideMs: &outside, Server: "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}},
	}}
	r.Phases.Steady.Start, r.Phases.Steady.End = 1, 5
	var b strings.Builder
	WriteSummary(&b, r)
	got := b.String()
	if strings.Contains(got, "latency:  mean") || strings.Contains(got, "outside the server: 5") || strings.Contains(got, "slightly different span") {
		t.Errorf("figures of another span are said:\n%s", got)
	}
	if !strings.Contains(got, "latency and outside the server: withheld: the scrape at the end was answered 1500 ms after it, 41% of the server's 3.7 s window") {
		t.Errorf("no line says why the latency is withheld:\n%s", got)
	}
	rows := serverRows(r)
	for _, row := range rows {
		if row.Key == "mean" || row.Key == "outside" {
			t.Errorf("the page says %s of another span: %+v", row.Key, row)
		}
	}
}

// A server mean above the client's is flagged, not printed as network
// time, and a percentile in the +Inf bucket is only known to exceed its
// lower bound.
func TestANegativeOutsideIsFlaggedAndAnInfPercentileIsABound(t *testing.T) {
	n, outside, lo := 400.0, -3.5, 25.0
	r := &Result{Requests: 400, LatencyOK: Stats{Count: 400, Mean: 2}, Server: &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", StartS: 1, EndS: 5,
			ServerFigures: ServerFigures{Requests: &n, LatencyMs: &ServerLatency{Family: "f", Count: 400, Mean: 5.5,
				P99: &ServerQuantile{Ms: 37.5, BucketLowMs: lo}}}},
		OutsideMs: &outside, Server: "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}},
	}}
	r.Phases.Steady.Start, r.Phases.Steady.End = 1, 5
	var b strings.Builder
	WriteSummary(&b, r)
	got := b.String()
	if strings.Contains(got, "outside the server: -3.500") || !strings.Contains(got, "outside the server: none: the server's mean 5.500 ms exceeds the client's 2.000 ms") {
		t.Errorf("a negative outside is said as time:\n%s", got)
	}
	if strings.Contains(got, "37.50") || !strings.Contains(got, "p99 > 25.00 ms [25.00-+Inf]") {
		t.Errorf("a +Inf bucket's percentile is said as a point:\n%s", got)
	}
	for _, row := range serverRows(r) {
		if row.Key == "outside" && row.Server != "-" {
			t.Errorf("the page says outside %q", row.Server)
		}
		if row.Key == "p99" && row.Server != "> 25.00 [25.00-+Inf]" {
			t.Errorf("the page says p99 %q", row.Server)
		}
	}
}

// A run with a profile window and metrics shows the server's figures over
// the window beside the client's window requests on the page.
func TestThePageShowsTheServersProfileWindowBesideTheClients(t *testing.T) {
	r := goldenResult(t)
	steadyN, winN, hi := 1000.0, 200.0, 6.427
	outside := r.LatencyOK.Mean - 4
	r.Window = &Slice{Requests: 200, Errors: map[string]int64{}, Latency: Stats{Count: 200, Mean: 7.5, P50: 7, P90: 9, P99: 11},
		LatencyOK: Stats{Count: 200, Mean: 7.5, P50: 7, P90: 9, P99: 11}, Histogram: r.Histogram}
	r.Server = &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", StartS: 1, EndS: 11,
			ServerFigures: ServerFigures{Requests: &steadyN, LatencyMs: &ServerLatency{Family: ":tensorflow:serving:request_latency", Count: 1000, Mean: 4}}},
		Profile: &ServerWindow{Window: "profile", StartS: 3, EndS: 5,
			ServerFigures: ServerFigures{Requests: &winN, LatencyMs: &ServerLatency{Family: ":tensorflow:serving:request_latency", Count: 200, Mean: 5.25,
				P99: &ServerQuantile{Ms: 6.1, BucketLowMs: 3.57, BucketHighMs: &hi}}, ComputeMs: &ServerLatency{Family: ":tensorflow:serving:runtime_latency", Count: 200, Mean: 5}}},
		OutsideMs: &outside, Server: "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 12}},
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, []*Result{r}, []string{"r.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	got := page.String()
	i := strings.Index(got, `-server-profile">`)
	if i < 0 {
		t.Fatalf("no profile window table of the server's on the page")
	}
	table := got[i:]
	table = table[:strings.Index(table, "</table>")]
	for _, want := range []string{
		`<tr data-figure="requests"><td>requests</td><td class="num" data-stat="server">200</td><td class="num" data-stat="client">200</td>`,
		`<tr data-figure="mean"><td>latency mean (ms)</td><td class="num" data-stat="server">5.250</td><td class="num" data-stat="client">7.500</td>`,
		`<tr data-figure="p99"><td>latency p99 (ms)</td><td class="num" data-stat="server">6.100 [3.570-6.427]</td><td class="num" data-stat="client">11.00</td>`,
		`<tr data-figure="outside"><td>outside the server (ms)</td><td class="num" data-stat="server">2.250</td>`,
		`<tr data-figure="compute"><td>compute mean (ms)</td><td class="num" data-stat="server">5.000</td>`,
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the window table has no %s:\n%s", want, table)
		}
	}
	if !strings.Contains(got, "Over the profile window (3.0&ndash;5.0 s") {
		t.Error("the window's span is not said")
	}
	// Without the client's window (no --profile), no such table.
	r.Window = nil
	page.Reset()
	if err := WriteHTML(&page, []*Result{r}, []string{"r.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), `-server-profile"`) {
		t.Error("a profile window table without a window")
	}
}

// When the steady phase's edge scrapes failed and the scrapes that
// answered span far less than the steady phase, the server's latency and
// outside it are withheld, and the window is labelled by what it covers.
func TestAShortFallbackWindowWithholdsLatencyAndOutside(t *testing.T) {
	requests, outside := 3.0, 4.5
	r := &Result{Requests: 300, LatencyOK: Stats{Count: 300, Mean: 9},
		Phases: Phases{Steady: Phase{Start: 0.3, End: 3.3}},
		Server: &ServerReport{
			ServerWindow: ServerWindow{Window: "run", StartS: 1.2, EndS: 1.215, ServerFigures: ServerFigures{Requests: &requests,
				LatencyMs: &ServerLatency{Family: ":tensorflow:serving:request_latency", Count: 3, Mean: 4.5}}},
			OutsideMs: &outside, Server: "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5, FailedScrapes: 3}},
		}}
	var b strings.Builder
	WriteSummary(&b, r)
	out := b.String()
	for _, want := range []string{"over the 1.200-1.215 s its scrapes answered (the steady phase's edge scrapes failed)",
		"latency and outside the server: withheld: the server's scrapes span 1.200-1.215 s"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for _, not := range []string{"latency:  mean", "outside the server: 4.5", "whole run"} {
		if strings.Contains(out, not) {
			t.Errorf("%q in\n%s", not, out)
		}
	}
	if _, outside := StepServerCells(r); outside != "withheld" {
		t.Errorf("the sweep's outside cell %q, want withheld", outside)
	}
}

// KServe's request_predict_seconds times predict() alone: the summary
// says what outside the server then holds, with the pre/postprocess means.
func TestTheSummaryNotesWhatKServesLatencyLeavesOut(t *testing.T) {
	requests, outside, pre, post := 100.0, 3.0, 0.8, 0.4
	r := &Result{Requests: 100, LatencyOK: Stats{Count: 100, Mean: 9}, Server: &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: &requests,
			LatencyMs: &ServerLatency{Family: "request_predict_seconds", Count: 100, Mean: 6}}},
		OutsideMs: &outside, Server: "kserve", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5}},
		Families: []ServerFamily{{Name: "request_preprocess_seconds", What: "stage", Count: 100, Mean: &pre},
			{Name: "request_postprocess_seconds", What: "stage", Count: 100, Mean: &post}},
	}}
	var b strings.Builder
	WriteSummary(&b, r)
	want := "note: KServe's request_predict_seconds times only the model's predict(): outside the server includes KServe's HTTP, JSON decoding and encoding, preprocess and postprocess time (preprocess mean 0.800 ms, postprocess mean 0.400 ms)"
	if !strings.Contains(b.String(), want) {
		t.Errorf("no %q in\n%s", want, b.String())
	}
}

// The chart leaves out a sliver of an interval between two close scrapes:
// its few requests would draw a spike.
func TestTheServerChartLeavesOutASliverInterval(t *testing.T) {
	mean := 5.0
	var ivs []ServerInterval
	for i := range 4 {
		ivs = append(ivs, ServerInterval{StartS: float64(i), EndS: float64(i + 1), MeanMs: &mean, ClientRequests: 100})
	}
	spike := 90.0
	ivs = append(ivs, ServerInterval{StartS: 4, EndS: 4.02, MeanMs: &spike, ClientRequests: 2})
	c := serverChartOf(&ServerReport{Intervals: ivs})
	if len(c.Time) != 4 {
		t.Errorf("chart times %v: want the 4 whole intervals, not the 20 ms sliver", c.Time)
	}
}
