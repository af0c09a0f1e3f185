package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/servermetrics"
	"github.com/loadprof/loadprof/sim"
)

func f64(v float64) *float64 { return &v }

// A GPU exporter listed first gives the block its GPU figures; the
// model server after it gives the request figures, and outside_ms is
// the client's successful mean minus the server's.
func TestTheServerBlockTakesRequestsFromTheServerAndGPUFromTheExporter(t *testing.T) {
	origin := time.Now()
	win := func(name string, from, to time.Duration) servermetrics.Window {
		return servermetrics.Window{Name: name, Start: origin.Add(from), End: origin.Add(to)}
	}
	dcgm := win("steady", time.Second, 3*time.Second)
	dcgm.Server, dcgm.GPUUtilPct = "dcgm", f64(73)
	dcgm.Families = []servermetrics.Family{{Name: "DCGM_FI_DEV_GPU_UTIL", What: "gpu_util", Unit: "pct", Series: 1, Count: 3, Mean: 73}}
	tf := win("steady", time.Second, 3*time.Second)
	tf.Server, tf.Requests = "tfserving", f64(200)
	tf.StartLagMs, tf.EndLagMs = f64(12), f64(3)
	tf.Latency = &servermetrics.Latency{Family: ":tensorflow:serving:request_latency", Count: 200, MeanMs: 4,
		P99: &servermetrics.Quantile{Ms: 6.1, BucketLowMs: 3.57, BucketHighMs: f64(6.427)}}
	tf.Families = []servermetrics.Family{{Name: ":tensorflow:serving:request_count", What: "requests", Unit: "requests", Series: 1, Count: 200}}
	reps := []servermetrics.Report{
		{URL: "http://gpu:9400/metrics", Scrapes: 3, Steady: &dcgm, Run: &dcgm},
		{URL: "http://tf:8501/monitoring/prometheus/metrics", Scrapes: 4, FailedScrapes: 1, Steady: &tf, Run: &tf, Warnings: []string{"http://tf:8501/monitoring/prometheus/metrics: no answer within 2s"}},
	}
	res := &report.Result{Requests: 200, LatencyOK: report.Stats{Count: 200, Mean: 9.5}}
	s := serverReport(reps, res, origin, "m")
	if s.Server != "tfserving" || s.Requests == nil || *s.Requests != 200 || s.LatencyMs == nil || s.LatencyMs.Mean != 4 {
		t.Fatalf("request figures not from the model server: %+v", s)
	}
	if s.GPUUtilPct == nil || *s.GPUUtilPct != 73 {
		t.Errorf("GPU utilisation %v, want the exporter's 73", s.GPUUtilPct)
	}
	if s.OutsideMs == nil || *s.OutsideMs != 5.5 {
		t.Errorf("outside_ms %v, want 9.5 - 4", s.OutsideMs)
	}
	if s.StartS != 1 || s.EndS != 3 || s.Window != "steady" || s.Model != "m" {
		t.Errorf("window %q %v..%v s, model %q", s.Window, s.StartS, s.EndS, s.Model)
	}
	if s.StartLagMs == nil || *s.StartLagMs != 12 || s.EndLagMs == nil || *s.EndLagMs != 3 {
		t.Errorf("the marks' lags %v, %v: want 12 and 3 ms", s.StartLagMs, s.EndLagMs)
	}
	if len(s.Families) != 2 || len(s.Endpoints) != 2 || s.Endpoints[1].FailedScrapes != 1 || s.Endpoints[0].Server != "dcgm" {
		t.Errorf("families %+v, endpoints %+v", s.Families, s.Endpoints)
	}
	if q := s.LatencyMs.P99; q == nil || q.BucketLowMs != 3.57 || q.BucketHighMs == nil || *q.BucketHighMs != 6.427 {
		t.Errorf("p99 %+v lost its bucket", q)
	}
	var w strings.Builder
	warnMetrics(&w, s)
	if got := w.String(); got != "warning: metrics http://tf:8501/monitoring/prometheus/metrics: 1 of 4 scrapes failed (first: http://tf:8501/monitoring/prometheus/metrics: no answer within 2s); the load's results stand\n" {
		t.Errorf("warning %q", got)
	}
}

func TestTheModelFilterIsTheModelBeingLoaded(t *testing.T) {
	for url, want := range map[string]string{
		"http://h:8501/v1/models/resnet:predict":              "resnet",
		"http://h:8501/v1/models/resnet/versions/3:predict":   "resnet",
		"http://h:8501/v1/models/bert/labels/stable:classify": "bert",
		"http://h:8080/predict":                               "",
	} {
		if got := modelOf(url); got != want {
			t.Errorf("modelOf(%s) = %q, want %q", url, got, want)
		}
	}
}

// An interval's client requests are the seconds' it covers, each in
// proportion to how much of it it covers.
func TestAnIntervalGetsTheClientSecondsItMostlyCovers(t *testing.T) {
	res := &report.Result{Series: []report.Second{{Second: 0, Requests: 100}, {Second: 1, Requests: 200}, {Second: 2, Requests: 400}}}
	t0 := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	at := func(tm time.Time) float64 { return tm.Sub(t0).Seconds() }
	win := func(from, to float64) servermetrics.Window {
		return servermetrics.Window{Start: t0.Add(time.Duration(from * float64(time.Second))), End: t0.Add(time.Duration(to * float64(time.Second)))}
	}
	for _, c := range []struct {
		from, to float64
		want     int64
	}{
		{1.004, 2.004, 200}, // second 1 but for its first 4 ms, and 4 ms of second 2
		{0.004, 2.004, 301}, // seconds 0 and 1, 4 ms of second 2
		{1.0045, 1.0068, 0}, // a mark's scrape: 2.3 ms of second 1's 200
		{1.7, 2.3, 180},     // 30% of seconds 1 and 2
		{0.5, 1.25, 100},    // half of second 0 and a quarter of second 1
	} {
		got := intervalsOf([]servermetrics.Window{win(c.from, c.to)}, res, at)
		if len(got) != 1 || got[0].ClientRequests != c.want {
			t.Errorf("%.4f-%.4f s: client requests %+v, want %d", c.from, c.to, got, c.want)
		}
	}
}

// Two servers scraped, the load sent to the second listed: the head is
// the one whose count fits the load, and the summary says each one's.
func TestTheHeadIsTheEndpointWhoseCountFitsTheLoad(t *testing.T) {
	origin := time.Now()
	steady := func(server string, requests, mean float64) *servermetrics.Window {
		w := &servermetrics.Window{Name: "steady", Start: origin.Add(time.Second), End: origin.Add(3 * time.Second), Server: server, Requests: f64(requests),
			Latency: &servermetrics.Latency{Family: ":tensorflow:serving:request_latency", Count: requests, MeanMs: mean}}
		return w
	}
	idle, busy, other := steady("tfserving", 0, 0), steady("tfserving", 300, 4), steady("tfserving", 40, 9)
	reps := []servermetrics.Report{
		{URL: "http://sim2/metrics", Scrapes: 3, Steady: idle, Run: idle},
		{URL: "http://other/metrics", Scrapes: 3, Steady: other, Run: other},
		{URL: "http://sim1/metrics", Scrapes: 3, Steady: busy, Run: busy},
	}
	res := &report.Result{Requests: 300, LatencyOK: report.Stats{Count: 300, Mean: 5}}
	s := serverReport(reps, res, origin, "m")
	if s.Requests == nil || *s.Requests != 300 || s.Head != "http://sim1/metrics" || s.LatencyMs.Mean != 4 {
		t.Fatalf("head %q with %v requests, want sim1's 300", s.Head, s.Requests)
	}
	res.Server = s
	lines := strings.Join(report.CountingEndpointLines(s), "\n")
	for _, want := range []string{"2 endpoints counted requests", "http://other/metrics: requests 40", "http://sim1/metrics: requests 300"} {
		if !strings.Contains(lines, want) {
			t.Errorf("summary lines %q lack %q", lines, want)
		}
	}
}

// Sub-second intervals at the steady phase's edges (the marks' scrapes)
// beside whole-second ones: the client's requests over the intervals add
// up to no more than it sent, and close to it.
func TestTheIntervalsClientRequestsAddUpToNoMoreThanSent(t *testing.T) {
	res := &report.Result{}
	var sent int64
	for sec := 0; sec < 6; sec++ {
		res.Series = append(res.Series, report.Second{Second: sec, Requests: 200})
		sent += 200
	}
	t0 := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	at := func(tm time.Time) float64 { return tm.Sub(t0).Seconds() }
	var ivs []servermetrics.Window
	edges := []float64{0, 0.003, 1.002, 1.503, 1.51, 2.51, 3.5, 4.5, 4.52, 5.004, 5.9, 6.0}
	for i := 1; i < len(edges); i++ {
		ivs = append(ivs, servermetrics.Window{Start: t0.Add(time.Duration(edges[i-1] * float64(time.Second))), End: t0.Add(time.Duration(edges[i] * float64(time.Second)))})
	}
	var sum int64
	for _, iv := range intervalsOf(ivs, res, at) {
		sum += iv.ClientRequests
	}
	if sum > sent || sum < sent-int64(len(ivs)) {
		t.Errorf("the intervals' client requests add up to %d; the client sent %d", sum, sent)
	}
}

// A counter family's figure is its count: result.json gives it no
// meaningless mean of 0; a latency family keeps its mean.
func TestACounterFamilyHasNoMean(t *testing.T) {
	c := familyOf(servermetrics.Family{Name: ":tensorflow:serving:request_count", What: "requests", Unit: "requests", Series: 1, Count: 200})
	l := familyOf(servermetrics.Family{Name: ":tensorflow:serving:request_latency", What: "latency", Unit: "ms", Series: 1, Count: 200, Mean: 4})
	if c.Mean != nil || l.Mean == nil || *l.Mean != 4 {
		t.Errorf("counter mean %v, latency mean %v", c.Mean, l.Mean)
	}
}

// A server mean above the client's makes outside_ms no time: it is null,
// with the reason in server.warnings. A latency family that observed
// nothing has no mean: latency_ms is null, not a 0 ms mean.
func TestANegativeOutsideIsNullAndAnEmptyLatencyHasNoMean(t *testing.T) {
	origin := time.Now()
	tf := servermetrics.Window{Name: "steady", Start: origin.Add(time.Second), End: origin.Add(3 * time.Second), Server: "tfserving", Requests: f64(200)}
	tf.Latency = &servermetrics.Latency{Family: ":tensorflow:serving:request_latency", Count: 200, MeanMs: 57.4}
	reps := []servermetrics.Report{{URL: "http://tf/metrics", Scrapes: 3, Steady: &tf, Run: &tf}}
	res := &report.Result{Requests: 200, LatencyOK: report.Stats{Count: 200, Mean: 9.5}}
	s := serverReport(reps, res, origin, "m")
	if s.OutsideMs != nil {
		t.Errorf("outside_ms %v: want null (the server's mean exceeds the client's)", *s.OutsideMs)
	}
	if !strings.Contains(strings.Join(s.Warnings, "\n"), "outside_ms: none: the server's mean 57.40 ms exceeds the client's 9.500 ms") {
		t.Errorf("warnings %q do not say why outside_ms is null", s.Warnings)
	}

	empty := tf
	empty.Latency = &servermetrics.Latency{Family: ":tensorflow:serving:request_latency", Count: 0}
	empty.Families = []servermetrics.Family{{Name: ":tensorflow:serving:request_latency", What: "latency", Unit: "ms", Series: 1}}
	s = serverReport([]servermetrics.Report{{URL: "http://tf/metrics", Scrapes: 3, Steady: &empty, Run: &empty}}, res, origin, "m")
	if s.LatencyMs != nil {
		t.Errorf("latency_ms %+v: want null when the family observed nothing", s.LatencyMs)
	}
	if len(s.Families) != 1 || s.Families[0].Mean != nil {
		t.Errorf("families %+v: want no mean for a family that observed nothing", s.Families)
	}
}

// An endpoint that exports TF Serving's families only for another model
// gives no figures of the model loaded, and the summary and
// server.warnings say which model(s) they were exported for.
func TestAWrongModelLabelNamesTheModelsExported(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	var n atomic.Int64
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=\"other_model\",status=\"OK\"} %d\n", n.Add(7))
	}))
	defer page.Close()
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 50, Duration: 400 * time.Millisecond, MaxInflight: 10},
		Metrics: &MetricsConfig{URLs: []string{page.URL}, Interval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ":tensorflow:serving:request_count is exported for model(s) other_model, not " + srv.Model() + " (--model / the URL's model)"
	if res.Server == nil || !strings.Contains(strings.Join(res.Server.Warnings, "\n"), want) {
		t.Fatalf("server block %+v: want the warning %q", res.Server, want)
	}
	var sum strings.Builder
	report.WriteSummary(&sum, res)
	if !strings.Contains(sum.String(), "no request figures: "+want) {
		t.Errorf("summary does not name the models exported:\n%s", sum.String())
	}
}

// A fallback window (the steady phase's edge scrapes failed) far shorter
// than the steady phase gives no outside_ms.
func TestAShortFallbackWindowHasNoOutside(t *testing.T) {
	origin := time.Now()
	run := servermetrics.Window{Name: "run", Start: origin.Add(1200 * time.Millisecond), End: origin.Add(1215 * time.Millisecond), Server: "tfserving", Requests: f64(3)}
	run.Latency = &servermetrics.Latency{Family: ":tensorflow:serving:request_latency", Count: 3, MeanMs: 4}
	res := &report.Result{Requests: 300, LatencyOK: report.Stats{Count: 300, Mean: 9.5},
		Phases: report.Phases{Steady: report.Phase{Start: 0.3, End: 3.3}}}
	s := serverReport([]servermetrics.Report{{URL: "http://tf/metrics", Scrapes: 5, FailedScrapes: 3, Run: &run}}, res, origin, "m")
	if s.Window != "run" || s.OutsideMs != nil {
		t.Errorf("window %q, outside_ms %v: want the run window and no outside figure", s.Window, s.OutsideMs)
	}
}

// A hung endpoint delays the end of a finished run by one
// --metrics-timeout in all: the last scrape does not wait a timeout of
// its own after the hung scrape under way used up the first.
func TestAHungEndpointDelaysTheEndByOneTimeout(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer page.Close()
	defer close(release)
	const timeout = 400 * time.Millisecond
	m, err := startMetrics(context.Background(), Config{URL: "http://127.0.0.1:1/v1/models/m:predict",
		Metrics: &MetricsConfig{URLs: []string{page.URL}, Interval: time.Hour, Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	for arrived.Load() == 0 { // the first scrape is under way, and hangs
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	reps := m.close()
	took := time.Since(start)
	// Two timeouts was the old wait; one and a half leaves a busy
	// machine room and still tells them apart.
	if took > timeout*3/2 {
		t.Errorf("the end waited %v for a hung endpoint, want about one --metrics-timeout (%v)", took, timeout)
	}
	if len(reps) != 1 || reps[0].FailedScrapes == 0 {
		t.Errorf("reports %+v: want the failed scrapes counted", reps)
	}
}

// An interval the client completed no request in carries no client
// figures (the second around it is its neighbours').
func TestAnIntervalWithoutClientRequestsHasNoClientFigures(t *testing.T) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for range 100 {
		h.RecordValue(5000)
	}
	enc, err := report.EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	res := &report.Result{Series: []report.Second{{Second: 0, Requests: 100}}, SeriesHistograms: []report.SecondHistogram{{Second: 0, Histogram: enc}}}
	origin := time.Now()
	at := func(t time.Time) float64 { return t.Sub(origin).Seconds() }
	ivs := intervalsOf([]servermetrics.Window{
		{Start: origin, End: origin.Add(995 * time.Millisecond)},
		{Start: origin.Add(995 * time.Millisecond), End: origin.Add(999 * time.Millisecond)},
	}, res, at)
	if ivs[0].ClientRequests == 0 || ivs[0].ClientMeanMs == nil {
		t.Fatalf("first interval %+v: want the client's figures", ivs[0])
	}
	if ivs[1].ClientRequests != 0 || ivs[1].ClientP99Ms != nil || ivs[1].ClientMeanMs != nil {
		t.Errorf("4 ms interval: client requests %d, p99 %v, mean %v: want 0 and no figures", ivs[1].ClientRequests, ivs[1].ClientP99Ms, ivs[1].ClientMeanMs)
	}
}

// One rule redacts the credentials of -H and --metrics-header alike,
// whatever the header's made-up name.
func TestRedactHeadersCatchesCredentialLookingNames(t *testing.T) {
	for _, name := range []string{"X-Custom-Auth", "X-Auth-Token", "Ocp-Apim-Subscription-Key", "X-Key", "My-Secret-Header", "XSecretValue", "Cookie", "Set-Cookie", "Proxy-Authorization", "x_api_key"} {
		if got := RedactHeaders([]load.Header{{Key: name, Value: "v4lue"}}); got[0] != name+": <redacted>" {
			t.Errorf("%s: %q, want its value redacted", name, got[0])
		}
	}
	for _, name := range []string{"Content-Type", "X-Request-Source", "Keep-Alive", "Accept"} {
		if got := RedactHeaders([]load.Header{{Key: name, Value: "v"}}); got[0] != name+": v" {
			t.Errorf("%s: %q, want it kept", name, got[0])
		}
	}
}

// An interrupt while the end of the run waits for the last scrape marks
// the result interrupted, as the summary then says.
func TestAnInterruptDuringTheLastScrapeMarksTheRunInterrupted(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) >= 4 { // the scrape at the end, after the load
			cancel()
			<-r.Context().Done()
			return
		}
		fmt.Fprintf(w, "# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=%q} %d\n", srv.Model(), n.Load())
	}))
	defer page.Close()
	res, err := Run(ctx, Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 20, Duration: 300 * time.Millisecond, MaxInflight: 10},
		Metrics: &MetricsConfig{URLs: []string{page.URL}, Interval: time.Hour, Timeout: time.Minute},
	})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	if n.Load() < 4 {
		t.Fatalf("%d scrapes: the end scrape never came", n.Load())
	}
	if !res.Interrupted {
		t.Error("the result is not marked interrupted")
	}
	var sum strings.Builder
	report.WriteSummary(&sum, res)
	if !strings.Contains(sum.String(), "INTERRUPTED") {
		t.Errorf("no INTERRUPTED line:\n%s", sum.String())
	}
}
