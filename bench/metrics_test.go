package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// delayTolerance is how far the recovered network delay may be from what
// the simulator held; the race detector slows the client far more than
// the server's timers.
func delayTolerance() float64 {
	if raceDetector {
		return 0.5
	}
	return 0.1
}

// scrapeIndex finds which scrape opened (or closed) a window at run
// time s: every scrape succeeded, so the intervals run from each to the
// next.
func scrapeIndex(t *testing.T, ivs []report.ServerInterval, s float64) int {
	t.Helper()
	for i, iv := range ivs {
		if iv.StartS == s {
			return i
		}
	}
	if n := len(ivs); n > 0 && ivs[n-1].EndS == s {
		return n
	}
	t.Fatalf("no scrape at %v s among the intervals", s)
	return -1
}

// scrapedRun is one run against a simulator holding every call for a
// network delay, its metrics scraped through a testkit.CountingScrape.
type scrapedRun struct {
	srv      *sim.Server
	counting *testkit.CountingScrape
	res      *report.Result
	err      error
}

// runScraped runs one scraped run per delay, all at once: a busy machine
// slows their clients alike, so what one adds by itself is measured
// beside the others, not seconds earlier under another load.
func runScraped(t *testing.T, delays ...time.Duration) []*scrapedRun {
	t.Helper()
	runs := make([]*scrapedRun, len(delays))
	var wg sync.WaitGroup
	for i, delay := range delays {
		srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}, NetworkDelay: delay})
		counting := testkit.NewCountingScrape(t, srv)
		cfg := Config{
			URL: srv.PredictURL(), DataPath: writeFile(t, fmt.Sprintf("data%d.json", i), body), Timeout: 5 * time.Second,
			Plan:    load.Plan{Rate: 100, WarmupDuration: 300 * time.Millisecond, Duration: 3 * time.Second, MaxInflight: 100},
			Metrics: &MetricsConfig{URLs: []string{counting.URL}, Interval: 250 * time.Millisecond},
		}
		runs[i] = &scrapedRun{srv: srv, counting: counting}
		wg.Add(1)
		go func(r *scrapedRun) {
			defer wg.Done()
			r.res, r.err = Run(context.Background(), cfg)
		}(runs[i])
	}
	wg.Wait()
	for _, r := range runs {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if s := r.res.Server; s == nil || s.Requests == nil || s.LatencyMs == nil || s.OutsideMs == nil {
			t.Fatalf("no server figures: %+v", s)
		}
		if r.res.Client.SendLag == nil {
			t.Fatal("an open-loop run without its send lag")
		}
	}
	return runs
}

func TestServerFiguresOverTheSteadyPhaseEqualTheSims(t *testing.T) {
	const delay = 20 * time.Millisecond
	runs := runScraped(t, 0, delay)
	baseline, res, srv, counting := runs[0].res, runs[1].res, runs[1].srv, runs[1].counting
	s := res.Server
	if s.Window != "steady" || s.Server != "tfserving" || s.Model != srv.Model() || len(s.Endpoints) != 1 || s.Endpoints[0].FailedScrapes != 0 {
		t.Fatalf("server block: window %q, server %q, model %q, endpoints %+v, warnings %q", s.Window, s.Server, s.Model, s.Endpoints, s.Warnings)
	}

	// The scrapes at the steady phase's edges say how long after its
	// marks they began, and the window starts no earlier than the phase.
	if s.StartLagMs == nil || s.EndLagMs == nil || *s.StartLagMs < 0 || s.StartS < res.Phases.Steady.Start-0.001 {
		t.Errorf("the steady window %.3f-%.3f s (phase %.3f-%.3f s): mark lags %v, %v", s.StartS, s.EndS, res.Phases.Steady.Start, res.Phases.Steady.End, s.StartLagMs, s.EndLagMs)
	}

	// The server's count over the steady phase is the sim's between the
	// scrapes at its marks: exact when no call ended while either page
	// was being rendered, else within what ended meanwhile.
	from, to := scrapeIndex(t, s.Intervals, s.StartS), scrapeIndex(t, s.Intervals, s.EndS)
	lowN, highN := counting.Between(t, from, to)
	got := *s.Requests
	low, high := float64(lowN), float64(highN)
	t.Logf("server counted %v over the steady phase; the sim %v..%v; the client %d", got, low, high, res.Requests)
	if got < low || got > high {
		t.Fatalf("server counted %v requests, the sim %v to %v between the same scrapes", got, low, high)
	}
	if low == high && got != low {
		t.Fatalf("server counted %v requests, the sim %v", got, low)
	}
	// Every steady request ended between the marks; in-flight warm-up
	// requests at the first may add a few.
	if got < float64(res.Requests) || got > float64(res.Requests)+float64(res.Phases.Warmup.Requests) {
		t.Errorf("server counted %v, the client %d steady requests", got, res.Requests)
	}

	// Outside the server: the client's mean minus the server's, less
	// what it is without a delay, is the delay the sim held. The client's
	// latency counts from each request's intended send time, so how late
	// its busy machine sent them (its own send lag, recorded by each run)
	// is in its mean and is not the network's: it is taken out of both.
	held := float64(srv.NetworkDelayed()) / float64(srv.Predicts()) / 1e6
	lateDelayed, lateBaseline := res.Client.SendLag.Mean, baseline.Client.SendLag.Mean
	recovered := (*s.OutsideMs - lateDelayed) - (*baseline.Server.OutsideMs - lateBaseline)
	t.Logf("outside the server %.3f ms with a %v network delay (held %.3f ms a call), %.3f ms without; mean send lag %.3f and %.3f ms: recovered %.3f ms",
		*s.OutsideMs, delay, held, *baseline.Server.OutsideMs, lateDelayed, lateBaseline, recovered)
	if tol := delayTolerance(); recovered < (1-tol)*held || recovered > (1+tol)*held {
		t.Errorf("recovered %.3f ms of a %.3f ms network delay, want within %g%%", recovered, held, 100*tol)
	}
	if len(s.Intervals) < 4 {
		t.Fatalf("%d intervals over a 3 s run scraped every 250 ms", len(s.Intervals))
	}
	withClient := 0
	for _, iv := range s.Intervals {
		if iv.ClientP99Ms != nil && iv.P99 != nil {
			withClient++
		}
	}
	if withClient == 0 {
		t.Errorf("no interval has both the server's and the client's p99: %+v", s.Intervals)
	}
}

func TestAMetricsEndpointThatDiesMidRunCostsNoLoadData(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	var scrapes atomic.Int64
	var page *httptest.Server
	var once sync.Once
	page = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scrapes.Add(1) > 4 {
			// The endpoint goes away: this connection and every later one.
			once.Do(func() { go page.Close() })
			hj, _ := w.(http.Hijacker)
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		resp, err := http.Get(srv.MetricsURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(page.Close)
	var warnings strings.Builder
	plan := load.Plan{Rate: 100, Duration: 2 * time.Second, MaxInflight: 100}
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second, Plan: plan,
		// The sim's own page beside it lives through the run.
		Metrics:  &MetricsConfig{URLs: []string{page.URL + sim.MetricsPath, srv.MetricsURL()}, Interval: 100 * time.Millisecond},
		Warnings: &warnings,
	})
	if err != nil {
		t.Fatalf("a failing metrics endpoint failed the run: %v", err)
	}
	if res.Requests != 200 || report.Successes(res) != 200 || res.Latency.Count != 200 || len(res.Series) == 0 {
		t.Fatalf("load results: %d requests, %d ok, latency count %d", res.Requests, report.Successes(res), res.Latency.Count)
	}
	s := res.Server
	if s == nil || len(s.Endpoints) != 2 || s.Endpoints[0].FailedScrapes == 0 || len(s.Warnings) == 0 {
		t.Fatalf("no failed scrapes reported: %+v", s)
	}
	// The endpoint that saw the whole steady phase heads the block, not
	// the first one listed, whose window the failures cut short.
	whole := s.Endpoints[1].Steady
	if whole == nil || whole.Requests == nil || s.Requests == nil || *s.Requests != *whole.Requests || s.StartS != whole.StartS || s.EndS != whole.EndS {
		t.Errorf("the block's figures are not the whole endpoint's: block %+v, endpoints %+v", s.ServerWindow, s.Endpoints)
	}

	if s.Endpoints[0].Scrapes-s.Endpoints[0].FailedScrapes < 2 || len(s.Intervals) == 0 {
		t.Errorf("the scrapes before the endpoint died are lost: %+v", s.Endpoints[0])
	}
	if !strings.Contains(warnings.String(), "warning: metrics "+page.URL) || !strings.Contains(warnings.String(), "the load's results stand") {
		t.Errorf("warnings %q", warnings.String())
	}
}

func TestThePageShowsWhatTheServerMeasured(t *testing.T) {
	testkit.Chromium(t)
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 2 * time.Millisecond, Jitter: 3 * time.Millisecond}, NetworkDelay: 5 * time.Millisecond})
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	ran, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 100, Duration: 4 * time.Second, MaxInflight: 100},
		Metrics: &MetricsConfig{URLs: []string{srv.MetricsURL()}, Interval: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, ran, out)
	res, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Server == nil || len(res.Server.Intervals) < 4 {
		t.Fatalf("server block %+v", res.Server)
	}
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, []*report.Result{res}, []string{"run.json"}, report.ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := testkit.PageDOM(t, page)
	requests := testkit.DOMCells(dom, "data-figure", "requests")
	if requests["server"] != fmt.Sprint(*res.Server.Requests) || requests["client"] != fmt.Sprint(res.Requests) {
		t.Errorf("requests row %v, want server %v and client %d", requests, *res.Server.Requests, res.Requests)
	}
	outside := testkit.DOMCells(dom, "data-figure", "outside")
	if outside["server"] != report.FormatMs(*res.Server.OutsideMs) {
		t.Errorf("outside row %v, want %s", outside, report.FormatMs(*res.Server.OutsideMs))
	}
	p99 := testkit.DOMCells(dom, "data-figure", "p99")
	if q := res.Server.LatencyMs.P99; q == nil || p99["server"] != report.FormatMs(q.Ms)+" "+report.BucketBounds(q) {
		t.Errorf("p99 row %v, want the server's with its bucket", p99)
	}
	// Both p99 lines and both means, a point per interval each where known.
	if got := testkit.DOMAttr(t, dom, "r0-server-p99", "data-series"); got != "4" {
		t.Errorf("server chart: %s series, want 4", got)
	}
	// The chart leaves out slivers (under half the median interval): a
	// busy machine answers some scrapes late, and the next comes soon.
	var lengths []float64
	for _, iv := range res.Server.Intervals {
		lengths = append(lengths, iv.EndS-iv.StartS)
	}
	slices.Sort(lengths)
	sliver := lengths[len(lengths)/2] / 2
	known := 0
	for _, iv := range res.Server.Intervals {
		if iv.EndS-iv.StartS < sliver {
			continue
		}
		for _, v := range []*float64{iv.ClientP99Ms, iv.MeanMs, iv.ClientMeanMs} {
			if v != nil {
				known++
			}
		}
		if iv.P99 != nil {
			known++
		}
	}
	if got := testkit.DOMAttr(t, dom, "r0-server-p99", "data-points"); got != fmt.Sprint(known) {
		t.Errorf("server chart: %s points, want %d", got, known)
	}
	if shots := os.Getenv("LOADPROF_SCREENSHOTS"); shots != "" {
		t.Logf("screenshot in %s", shots)
	}
}

// Ctrl-C while the metrics endpoint hangs: the last scrape is waited for
// briefly, not for the scrape timeout, the abandoned scrape is no
// failure of the endpoint's, and the load's results stand.
func TestAnInterruptDoesNotWaitForAHungMetricsEndpoint(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	const timeout = 20 * time.Second
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var scrapes atomic.Int64
	waited := make(chan time.Duration, 100)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scrapes.Add(1) > 3 {
			// Hung: the user interrupts, the scrape is left waiting.
			interrupt()
			at := time.Now()
			<-r.Context().Done()
			waited <- time.Since(at)
			return
		}
		resp, err := http.Get(srv.MetricsURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(page.Close)
	res, err := Run(ctx, Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 50, Duration: time.Minute, MaxInflight: 100},
		Metrics: &MetricsConfig{URLs: []string{page.URL + sim.MetricsPath}, Interval: 100 * time.Millisecond, Timeout: timeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Requests == 0 {
		t.Fatalf("interrupted %v, %d requests: the load's results are lost", res.Interrupted, res.Requests)
	}
	// The server sees the client give up a moment after Run returns.
	select {
	case d := <-waited:
		if d >= timeout/2 {
			t.Errorf("the hung scrape was waited for %v, as long as its %v timeout", d, timeout)
		}
	case <-time.After(timeout):
		t.Fatal("the hung scrape was never cancelled")
	}
	s := res.Server
	if s == nil || len(s.Endpoints) != 1 || s.Endpoints[0].FailedScrapes != 0 {
		t.Fatalf("the abandoned scrape counts as a failure: %+v", s)
	}
	for _, w := range s.Warnings {
		if strings.Contains(w, "context canceled") {
			t.Errorf("warning %q: loadprof's own cancelling is no failure", w)
		}
	}
}
