package servermetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

func TestSamplerCloseIsBoundedWhenTheEndpointHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	sm, err := Start(context.Background(), Config{URL: srv.URL, Interval: time.Hour, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		sm.Mark(MarkSteadyStart) // never waits for the hung scrape
	}
	samples := sm.Close()
	if len(samples) < 2 {
		t.Fatalf("samples %+v: want the first and the last scrape, failed", samples)
	}
	for _, s := range samples {
		if s.OK() || !strings.Contains(s.Warning, "no answer within 50ms") {
			t.Errorf("sample %+v: want a timeout warning", s)
		}
	}
	// The marks waited for the hung first scrape: their sample says so.
	for _, s := range samples[1:] {
		if len(s.Marks) > 0 && s.Marks[0] == MarkSteadyStart && !(s.MarkLagMs > 0) {
			t.Errorf("the steady_start scrape reports a lag of %v ms behind its mark", s.MarkLagMs)
		}
	}
	if last := samples[len(samples)-1]; len(last.Marks) == 0 || last.Marks[len(last.Marks)-1] != MarkEnd {
		t.Errorf("the last sample's marks are %q, want %s last", last.Marks, MarkEnd)
	}
	if sm.Close(); len(sm.Samples()) != len(samples) {
		t.Error("a second Close scraped again")
	}
}

func TestSamplerStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	sm, err := Start(ctx, Config{URL: srv.URL, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	samples := sm.Close()
	if n := len(samples); n == 0 || !strings.Contains(samples[n-1].Warning, "sampling stopped: context canceled") {
		t.Errorf("samples %+v: want a warning that sampling stopped", samples)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "localhost:8501/metrics"}, "servermetrics.Config.URL localhost:8501/metrics: must be an http:// or https:// URL"},
		{Config{URL: "http://127.0.0.1:1/metrics", Interval: -time.Second}, "servermetrics.Config.Interval -1s: must not be negative"},
	} {
		if _, err := Start(context.Background(), c.cfg); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// A server on the Go client answers the protobuf format it is offered;
// the figures must not depend on which format came back.
func TestScrapeReadsTheProtobufFormat(t *testing.T) {
	fam := &dto.MetricFamily{
		Name: proto.String("nv_inference_request_success"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{
			Label:   []*dto.LabelPair{{Name: proto.String("model"), Value: proto.String("m")}},
			Counter: &dto.Counter{Value: proto.Float64(42)},
		}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
		if format.FormatType() != expfmt.TypeProtoDelim {
			t.Errorf("Accept %q did not negotiate protobuf", r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", string(format))
		if err := expfmt.NewEncoder(w, format).Encode(fam); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	s, err := Scrape(context.Background(), srv.Client(), srv.URL, Filter{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	se := s.Series[`nv_inference_request_success{model="m"}`]
	if se == nil || se.Kind != Counter || se.Value != 42 {
		t.Fatalf("series %+v", s.Series)
	}
}

func TestReportIsJSONWithUnitsInItsNames(t *testing.T) {
	a := parse(t, tfBefore+"# TYPE weird gauge\nweird NaN\n# TYPE still counter\nstill 3\n# TYPE queue_depth gauge\nqueue_depth 4\n", 0, Filter{Model: "resnet"})
	b := parse(t, tfAfter+"# TYPE weird gauge\nweird +Inf\n# TYPE still counter\nstill 3\n# TYPE queue_depth gauge\nqueue_depth 5\n", 1, Filter{Model: "resnet"})
	samples := []Sample{
		{At: a.At, Marks: []string{MarkStart, MarkSteadyStart}, snap: a},
		{At: a.At.Add(500 * time.Millisecond), Warning: "http://x/metrics: connection refused"},
		{At: b.At, Marks: []string{MarkSteadyEnd, MarkEnd}, snap: b},
	}
	rep := summarize("http://x/metrics", "resnet", samples)
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, want := range []string{`"steady":{"name":"steady"`, `"duration_s":1`, `"requests":100`, `"mean_ms":1.5`,
		`"p50":{"ms":1.25,"bucket_low_ms":1,"bucket_high_ms":2}`, `"failed_scrapes":1`, `connection refused`} {
		if !strings.Contains(doc, want) {
			t.Errorf("result lacks %s:\n%s", want, doc)
		}
	}
	if len(rep.Intervals) != 1 {
		t.Fatalf("%d intervals, want 1 (the failed scrape is skipped)", len(rep.Intervals))
	}
	names := func(raw []RawChange) string {
		var n []string
		for _, r := range raw {
			n = append(n, r.Name)
		}
		return strings.Join(n, " ")
	}
	// The NaN and +Inf gauge has no value JSON can hold: left out; the
	// counter that did not move says nothing: left out too.
	if s, i := names(rep.Steady.Raw), names(rep.Intervals[0].Raw); s != ":tensorflow:core:graph_runs queue_depth" || i != ":tensorflow:core:graph_runs queue_depth" {
		t.Errorf("raw: steady %q, interval %q; the interval should list only what moved (and gauges)",
			s, i)
	}
}

// FuzzParse: whatever a server sends, Parse and the figures neither
// panic nor produce what JSON cannot hold.
func FuzzParse(f *testing.F) {
	f.Add(tfBefore, tfAfter)
	f.Add("# TYPE x histogram\nx_bucket{le=\"1\"} 3\nx_bucket{le=\"+Inf\"} 2\nx_count 2\nx_sum NaN\n", "# TYPE x counter\nx 1\n")
	f.Add("# TYPE request_predict_seconds histogram\nrequest_predict_seconds_bucket{le=\"+Inf\"} 1\n", "")
	f.Fuzz(func(t *testing.T, before, after string) {
		var snaps []*Snapshot
		p := newPageParser(Filter{})
		for _, text := range []string{before, after} {
			s, err := Parse(strings.NewReader(text), "text/plain; version=0.0.4", Filter{})
			cached, cachedErr := p.parse(strings.NewReader(text), "text/plain; version=0.0.4")
			if (err == nil) != (cachedErr == nil) {
				t.Fatalf("Parse: %v; the page parser: %v", err, cachedErr)
			}
			if err != nil {
				return
			}
			if a, b := seriesText(s), seriesText(cached); a != b {
				t.Fatalf("Parse read\n%s\nthe page parser\n%s", a, b)
			}
			snaps = append(snaps, s)
		}
		w := Figures("f", Accumulate(snaps))
		if _, err := json.Marshal(w); err != nil {
			t.Fatalf("figures do not encode: %v", err)
		}
	})
}

// A server that answers OpenMetrics whatever it is asked gives the same
// family names as in the text format (prometheus_client's counters keep
// their _total), so the known families still match.
func TestParseReadsOpenMetricsWithTheSameNames(t *testing.T) {
	text := "# TYPE model_infer_request_success counter\n" +
		"model_infer_request_success_total{model=\"iris\",version=\"v1\"} 3.0\n" +
		"model_infer_request_success_created{model=\"iris\",version=\"v1\"} 1.7e9\n# EOF\n"
	s, err := Parse(strings.NewReader(text), "application/openmetrics-text; version=1.0.0; charset=utf-8", Filter{Model: "iris"})
	if err != nil {
		t.Fatal(err)
	}
	se := s.Series[`model_infer_request_success_total{model="iris",version="v1"}`]
	if len(s.Series) != 1 || se == nil || se.Value != 3 || knownByName[se.Family] == nil {
		t.Errorf("series %+v: want the known MLServer counter only", s.Series)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A large page scraped many times costs a Sampler a few snapshots' worth
// of memory, whatever the number of scrapes: it keeps the last one and a
// sum a window, not every scrape.
func TestSamplerMemoryDoesNotGrowWithTheScrapes(t *testing.T) {
	var static strings.Builder
	for f := range 250 {
		kind := "counter"
		if f%2 == 1 {
			kind = "gauge"
		}
		fmt.Fprintf(&static, "# TYPE :tensorflow:core:family%d %s\n", f, kind)
		for l := range 40 {
			fmt.Fprintf(&static, ":tensorflow:core:family%d{op=\"op%d\",device=\"/job:localhost/replica:0/task:0/device:CPU:0\"} %d\n", f, l, f*l)
		}
	}
	var n atomic.Int64
	page := func(i int64) string {
		return fmt.Sprintf("# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=\"m\",status=\"OK\"} %d\n", 10*i) + static.String()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, page(n.Add(1)))
	}))
	defer srv.Close()

	base := heapInUse()
	one, err := Parse(strings.NewReader(page(0)), "", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	snapshotBytes := heapInUse() - base
	runtime.KeepAlive(one)
	one = nil

	const scrapes = 60
	base = heapInUse()
	sm, err := Start(context.Background(), Config{URL: srv.URL, Model: "m", Interval: time.Millisecond, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int { return len(sm.Samples()) }
	deadline := time.Now().Add(2 * time.Minute)
	for count() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	sm.Mark(MarkSteadyStart)
	for count() < scrapes && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	sm.Mark(MarkSteadyEnd)
	samples := sm.Close()
	used := heapInUse() - base
	rep := sm.Report()
	runtime.KeepAlive(sm)

	if len(samples) < scrapes {
		t.Fatalf("%d scrapes in two minutes, want %d", len(samples), scrapes)
	}
	t.Logf("%d scrapes of a %d KB page: the sampler holds %d KB, one snapshot is %d KB", len(samples), len(page(0))>>10, used>>10, snapshotBytes>>10)
	if used > 8*snapshotBytes {
		t.Errorf("after %d scrapes the sampler holds %d KB, %.1f snapshots of %d KB: it grows with the run", len(samples), used>>10, float64(used)/float64(snapshotBytes), snapshotBytes>>10)
	}
	// What it keeps is still every figure.
	if rep.Run == nil || rep.Run.Requests == nil || *rep.Run.Requests != float64(10*(len(samples)-1)) {
		t.Errorf("run requests %v over %d scrapes, want %d", rep.Run, len(samples), 10*(len(samples)-1))
	}
	if rep.Steady == nil || rep.Steady.Requests == nil || len(rep.Intervals) != len(samples)-1 {
		t.Errorf("steady window %+v, %d intervals", rep.Steady, len(rep.Intervals))
	}
}

// A mark set while a scrape is under way is scraped after it: the
// window's edge lags the mark by that much, and the report says by how
// much.
func TestAWindowSaysHowLateItsMarksWereScraped(t *testing.T) {
	var n atomic.Int64
	hold := make(chan struct{}, 1) // a token in it makes the next scrape wait for release
	release := make(chan struct{})
	holding := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
			holding <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
		}
		_, _ = fmt.Fprintf(w, "# TYPE nv_inference_request_success counter\nnv_inference_request_success{model=\"m\"} %d\n", n.Add(10))
	}))
	defer srv.Close()
	sm, err := Start(context.Background(), Config{URL: srv.URL, Interval: time.Hour, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	waitSamples := func(k int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for len(sm.Samples()) < k {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for scrape %d", k)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitSamples(1)
	hold <- struct{}{}
	sm.Mark(MarkProfileOpen) // this scrape waits for release
	<-holding
	marked := time.Now()
	sm.Mark(MarkSteadyStart) // set while the scrape above is under way
	time.Sleep(60 * time.Millisecond)
	released := time.Now()
	close(release)
	waitSamples(3)
	sm.Mark(MarkSteadyEnd)
	sm.Mark(MarkProfileClose)
	sm.Close()
	rep := sm.Report()
	if rep.Steady == nil || rep.Steady.StartLagMs == nil || rep.Steady.EndLagMs == nil {
		t.Fatalf("steady window %+v: want its marks' lags", rep.Steady)
	}
	atLeast := float64(released.Sub(marked)) / 1e6
	if lag := *rep.Steady.StartLagMs; lag < atLeast {
		t.Errorf("the steady_start scrape lagged its mark by %.1f ms; it waited %.1f ms for the scrape under way", lag, atLeast)
	}
	// The profile window's start was marked before the held scrape began,
	// and that scrape's answer came after the release: its lag, which
	// runs to the answer, holds the whole wait too.
	if rep.Profile == nil || rep.Profile.StartLagMs == nil || *rep.Profile.StartLagMs < atLeast {
		t.Errorf("profile window %+v: its start's scrape was answered after the release, %.1f ms after its mark at least", rep.Profile, atLeast)
	}
}

// seriesText prints a snapshot's series by key (NaN equal to NaN).
func seriesText(s *Snapshot) string {
	m := map[string]Series{}
	for k, se := range s.Series {
		m[k] = *se
	}
	return fmt.Sprintf("%+v", m)
}

// A page of thousands of changing counters: the intervals list a
// bounded number of raw series, each interval and all together, and say
// how many they left out; the steady window lists every one.
func TestTheIntervalsRawSeriesAreCapped(t *testing.T) {
	const series, scrapes = 2500, 50 // 49 intervals x 2500 > rawInAll
	page := func(n int) string {
		var b strings.Builder
		b.WriteString("# TYPE churn counter\n")
		for i := 0; i < series; i++ {
			fmt.Fprintf(&b, "churn{id=\"%d\"} %d\n", i, n*(i+1))
		}
		return b.String()
	}
	var samples []Sample
	for n := 0; n < scrapes; n++ {
		snap := parse(t, page(n), float64(n), Filter{})
		sm := Sample{At: snap.At, snap: snap}
		switch n {
		case 0:
			sm.Marks = []string{MarkStart, MarkSteadyStart}
		case scrapes - 1:
			sm.Marks = []string{MarkSteadyEnd, MarkEnd}
		}
		samples = append(samples, sm)
	}
	rep := summarize("http://x/metrics", "", samples)
	kept := 0
	for _, iv := range rep.Intervals {
		if len(iv.Raw) > rawPerInterval {
			t.Fatalf("an interval lists %d raw series, more than %d", len(iv.Raw), rawPerInterval)
		}
		kept += len(iv.Raw)
	}
	if kept > rawInAll || kept == 0 {
		t.Errorf("the intervals list %d raw series in all; want 1..%d", kept, rawInAll)
	}
	if len(rep.Steady.Raw) != series {
		t.Errorf("the steady window lists %d raw series, want all %d", len(rep.Steady.Raw), series)
	}
	dropped := fmt.Sprint((scrapes-1)*series - kept)
	found := false
	for _, w := range rep.Warnings {
		found = found || strings.Contains(w, dropped+" changes of raw series were left out")
	}
	if !found {
		t.Errorf("no warning says %s raw changes were left out: %q", dropped, rep.Warnings)
	}
}

// A closed stop ends Close's wait for a scrape that never answers at
// once, and shorten bounds it by its own limit: the run's results are
// written without waiting the hour the limit allows.
func TestCloseByEndsTheWaitAtStopOrShorten(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			_, _ = io.WriteString(w, "# TYPE x counter\nx 1\n")
			return
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	for _, c := range []struct {
		name string
		stop bool
	}{{"stop", true}, {"shorten", false}} {
		calls.Store(0)
		s, err := Start(context.Background(), Config{URL: srv.URL, Interval: time.Hour, Timeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for len(s.Samples()) < 1 {
			time.Sleep(time.Millisecond)
		}
		ch := make(chan struct{})
		close(ch)
		returned := make(chan []Sample, 1)
		go func() {
			if c.stop {
				returned <- s.CloseBy(time.Hour, nil, time.Hour, ch)
			} else {
				returned <- s.CloseBy(time.Hour, ch, 10*time.Millisecond, nil)
			}
		}()
		select {
		case samples := <-returned:
			last := samples[len(samples)-1]
			if len(samples) != 2 || !last.Abandoned || s.Report().FailedScrapes != 0 {
				t.Errorf("%s: samples %+v, %d failed: want the last one abandoned, none failed", c.name, samples, s.Report().FailedScrapes)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s: CloseBy still waiting after a minute (its limit is an hour)", c.name)
		}
	}
}

// stallingTransport answers no request: past the request's own end it
// holds on until release says so, as a goroutine a busy machine runs
// late does.
type stallingTransport struct {
	entered chan struct{}
	release func() bool
}

func (tr *stallingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case tr.entered <- struct{}{}:
	default:
	}
	<-req.Context().Done()
	for !tr.release() {
		time.Sleep(time.Millisecond)
	}
	return nil, req.Context().Err()
}

// A scrape that had its whole --metrics-timeout without an answer
// failed, even when the end of the run's cancel reaches it before its
// own deadline's error does (both are late on a busy machine): the user
// is told the endpoint did not answer, and it counts as failed.
func TestAScrapeThatHadItsWholeTimeFailedWhoeverCancelledIt(t *testing.T) {
	var started atomic.Pointer[Sampler]
	tr := &stallingTransport{entered: make(chan struct{}, 1), release: func() bool {
		s := started.Load()
		return s != nil && s.ourCancel()
	}}
	s, err := Start(context.Background(), Config{URL: "http://127.0.0.1:1/metrics", Interval: time.Hour,
		Timeout: 20 * time.Millisecond, Client: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	started.Store(s)
	<-tr.entered
	// The first scrape's deadline passes; the transport sits on its
	// error until CloseWithin's limit has passed and it cancelled.
	samples := s.CloseWithin(50 * time.Millisecond)
	rep := s.Report()
	if len(samples) == 0 || samples[0].Abandoned || rep.FailedScrapes != 1 {
		t.Fatalf("samples %+v, %d failed: want the first scrape failed (no answer within its timeout), not abandoned", samples, rep.FailedScrapes)
	}
	if !strings.Contains(samples[0].Warning, "no answer within 20ms") {
		t.Errorf("warning %q: want it to say no answer within the timeout", samples[0].Warning)
	}
}
