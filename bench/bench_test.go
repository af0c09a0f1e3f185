package bench

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
	"github.com/valyala/fasthttp"
)

// The shared helpers, under the names these tests use.
var (
	startSim  = testkit.Sim
	writeFile = testkit.File
)

const body = `{"instances": [[1, 2, 3, 4]]}`

// restEngines are the REST engines this platform has.
func restEngines() []load.Engine {
	if runtime.GOOS == "linux" {
		return []load.Engine{load.EngineEpoll, load.EngineGoroutines}
	}
	return []load.Engine{load.EngineGoroutines}
}

func TestOpenLoopAgainstStallingSimReportsAnalyticP99(t *testing.T) {
	// The sim stops for 500 ms once a second. Requests are scheduled
	// uniformly, so half of them arrive inside a stall and wait for its end:
	// their latency is uniform on (0, 500 ms], and the 99th percentile of
	// all requests is where 2% of the stalled half lies above: 490 ms plus
	// the service time.
	for _, engine := range restEngines() {
		t.Run(string(engine), func(t *testing.T) {
			srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Stall: 500 * time.Millisecond, StallEvery: time.Second}})
			res, err := Run(context.Background(), Config{
				URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), RESTEngine: engine,
				Plan:    load.Plan{Rate: 400, Duration: 5 * time.Second, MaxInflight: 1000},
				Timeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.LatencyFrom != "intended_send" || res.Requests != 2000 || len(res.Errors) != 0 || res.Client.Engine != string(engine) {
				t.Fatalf("latency from %s, %d requests, errors %v, engine %q", res.LatencyFrom, res.Requests, res.Errors, res.Client.Engine)
			}
			// Client-side delays on a busy machine can only add latency, so the
			// bounds are wider above the analytic values than below, and the
			// upper ones grow by the client's own lateness measured in this
			// run (its send lag, and its median latency over the service
			// time): a machine with a load of 8 added 8 ms to p99.
			slack := max(res.Latency.P50-2, 0)
			if lag := res.Client.SendLag; lag != nil {
				slack += lag.P99
			}
			if p99 := res.Latency.P99; p99 < 466 || p99 > 540+slack {
				t.Fatalf("p99 %.1f ms, analytic value about 491 ms (client slack %.1f ms)", p99, slack)
			}
			if p90 := res.Latency.P90; p90 < 376 || p90 > 460+slack {
				t.Fatalf("p90 %.1f ms, analytic value about 401 ms (client slack %.1f ms)", p90, slack)
			}
		})
	}
}

func TestClosedLoopShowsCoordinatedOmissionOfTheSameStall(t *testing.T) {
	// The same stalling server seen by 4 closed-loop workers: each worker
	// is stuck once per stall, so only 4 requests a second are slow and the
	// p99 stays near the service time. This is the difference the open loop
	// exists for; the max still shows the stall.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Stall: 500 * time.Millisecond, StallEvery: time.Second}})
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan:    load.Plan{Concurrency: 4, Duration: 4 * time.Second},
		Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.LatencyFrom != "send" {
		t.Fatalf("latency from %s", res.LatencyFrom)
	}
	// The stall is the server's (at least 500 ms, more on a busy machine),
	// so the p99 is bound by this run's own max, not by a figure of ours.
	if res.Latency.P99 > res.Latency.Max/4 || res.Latency.Max < 300 {
		t.Fatalf("closed loop p99 %.1f ms max %.1f ms: want p99 well under the stall (a quarter of the max) and max near it", res.Latency.P99, res.Latency.Max)
	}
}

func TestWarmupRequestsAreExcludedFromSteadyStatistics(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan:    load.Plan{Concurrency: 2, WarmupRequests: 40, Requests: 100},
		Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Phases.Warmup.Requests != 40 || res.Requests != 100 || res.Latency.Count != 100 {
		t.Fatalf("warmup %d steady %d histogram %d", res.Phases.Warmup.Requests, res.Requests, res.Latency.Count)
	}
	if srv.Predicts() != 141 { // and the preflight request
		t.Fatalf("sim answered %d predicts", srv.Predicts())
	}
	if res.Phases.Steady.Start < res.Phases.Warmup.Start {
		t.Fatalf("phases %+v", res.Phases)
	}
}

func TestWarmupByDurationInOpenLoop(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan:    load.Plan{Rate: 200, WarmupDuration: 500 * time.Millisecond, Duration: time.Second, MaxInflight: 100},
		Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Phases.Warmup.Requests != 100 || res.Requests != 200 {
		t.Fatalf("warmup %d steady %d", res.Phases.Warmup.Requests, res.Requests)
	}
	if math.Abs(res.Phases.Steady.Start-0.5) > 0.001 {
		t.Fatalf("steady phase starts at %.4fs, want 0.5s", res.Phases.Steady.Start)
	}
}

// bodyRecorder is a loopback HTTP server that keeps the bodies it gets.
type bodyRecorder struct {
	mu     sync.Mutex
	bodies []string
	url    string
}

func startBodyRecorder(t *testing.T) *bodyRecorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	br := &bodyRecorder{url: "http://" + ln.Addr().String() + "/v1/models/m:predict"}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		br.mu.Lock()
		br.bodies = append(br.bodies, string(ctx.PostBody()))
		br.mu.Unlock()
		ctx.SetBodyString(`{"predictions": [0]}`)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return br
}

func TestPayloadsAreSentRoundRobin(t *testing.T) {
	br := startBodyRecorder(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"instances": ["a"]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "b.jsonl"), []byte("{\"instances\": [\"b\"]}\n{\"instances\": [\"c\"]}\n"), 0o644)
	_, err := Run(context.Background(), Config{
		URL: br.url, DataPath: dir, Plan: load.Plan{Concurrency: 1, Requests: 9}, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	br.mu.Lock() // the handler appends before it answers; the race detector cannot see that through a socket
	bodies := append([]string(nil), br.bodies...)
	br.mu.Unlock()
	counts := map[string]int{}
	for _, b := range bodies[1:] { // the first is the preflight
		counts[b]++
	}
	if len(bodies) != 10 || counts[`{"instances": ["a"]}`] != 3 || counts[`{"instances": ["b"]}`] != 3 || counts[`{"instances": ["c"]}`] != 3 {
		t.Fatalf("bodies sent: %v", counts)
	}
}

func TestBadPayloadFailsBeforeAnyLoadIsSent(t *testing.T) {
	srv := startSim(t, sim.Config{})
	_, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", "{\"instances\": [\n[1, 2], [3]]}"),
		Plan: load.Plan{Concurrency: 1, Requests: 10},
	})
	var in *InputError
	if !errors.As(err, &in) || !strings.Contains(err.Error(), "data.json: line 2: instances is ragged") {
		t.Fatalf("got %v", err)
	}
	if srv.Predicts() != 0 {
		t.Fatalf("%d requests were sent", srv.Predicts())
	}
}

func TestTargetFailuresAreTargetErrors(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", body)
	closedAddr := testkit.ClosedAddr(t)
	cases := map[string]string{
		"http://" + closedAddr + "/v1/models/test_model:predict":                "connection_refused",
		"http://" + srv.RESTAddr() + "/v1/models/other_model:predict":           "answered 404",
		"http://" + srv.RESTAddr() + "/v1/models/test_model/versions/7:predict": "Servable not found",
	}
	for url, want := range cases {
		_, err := Run(context.Background(), Config{URL: url, DataPath: data, Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: time.Second})
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a target error with %q", url, err, want)
		}
	}
	// A payload the model rejects (wrong width) is also caught before the load.
	_, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "wide.json", `{"instances": [[1, 2, 3]]}`),
		Plan: load.Plan{Concurrency: 1, Requests: 5}})
	if err == nil || !strings.Contains(err.Error(), "answered 400 to") || !strings.Contains(err.Error(), "dimension 1 is 3") {
		t.Fatalf("got %v", err)
	}
}

func TestErrorsAreCountedByClassAndWrittenToResult(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 0.3, ErrorStatus: 503}})
	out := filepath.Join(t.TempDir(), "result.json")
	hgrm := filepath.Join(t.TempDir(), "latency.hgrm")
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan:     load.Plan{Concurrency: 4, Requests: 1000},
		Settings: map[string]any{"concurrency": "4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, res, out)
	if err := report.WriteHGRMOutput("--hgrm", hgrm, decoded(t, res.Histogram)); err != nil {
		t.Fatal(err)
	}
	n503 := res.Errors["http_503"]
	if n503 < 220 || n503 > 380 || len(res.Errors) != 1 {
		t.Fatalf("errors %v, want about 300 http_503", res.Errors)
	}
	if res.ErrorSamples["http_503"] == "" || res.Latency.Count != 1000 {
		t.Fatalf("error samples %v, histogram count %d", res.ErrorSamples, res.Latency.Count)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"version", "config", "started_at", "phases", "requests", "errors", "throughput_rps", "latency_ms", "window", "outside", "histogram", "profile"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("result.json has no %q", key)
		}
	}
	lat := doc["latency_ms"].(map[string]any)
	for _, key := range []string{"min", "mean", "p50", "p90", "p95", "p99", "p999", "max"} {
		if _, ok := lat[key]; !ok {
			t.Errorf("latency_ms has no %q", key)
		}
	}
	back, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	h, err := report.DecodeHistogram(back.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 1000 || float64(load.ValueAtPercentile(h, 99))/1000 != res.Latency.P99 {
		t.Fatalf("decoded histogram: count %d p99 %d us vs %.3f ms", h.TotalCount(), load.ValueAtPercentile(h, 99), res.Latency.P99)
	}
	text, _ := os.ReadFile(hgrm)
	if !strings.Contains(string(text), "Value     Percentile TotalCount 1/(1-Percentile)") || !strings.Contains(string(text), "Total count    =         1000") {
		t.Fatalf("hgrm file:\n%s", text)
	}
}

func TestInterruptedRunWritesPartialResult(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	out := filepath.Join(t.TempDir(), "result.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	res, err := Run(ctx, Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Minute, MaxInflight: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, res, out)
	back, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || !back.Interrupted || back.Requests < 50 || back.Requests > 80 {
		t.Fatalf("interrupted %v, %d requests written", back.Interrupted, back.Requests)
	}
}

func TestRedactHeadersHidesCredentials(t *testing.T) {
	got := RedactHeaders([]load.Header{{Key: "Authorization", Value: "Bearer s3cret"}, {Key: "X-Api-Key", Value: "k"}, {Key: "X-Request-Source", Value: "ci"}})
	want := []string{"Authorization: <redacted>", "X-Api-Key: <redacted>", "X-Request-Source: ci"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %v", got)
	}
}

func TestHlogHoldsOneIntervalHistogramPerSecond(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	path := filepath.Join(t.TempDir(), "run.hlog")
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), IntervalLog: hlogTo(path),
		Plan: load.Plan{Rate: 200, WarmupDuration: 500 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 50},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reader := hdrhistogram.NewHistogramLogReader(f)
	seconds := map[int64]bool{} // a second of both phases has two intervals
	var total int64
	for {
		h, err := reader.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		seconds[h.StartTimeMs()] = true
		total += h.TotalCount()
	}
	if want := res.Requests + res.Phases.Warmup.Requests; total != want || len(seconds) < 3 || len(seconds) > 4 {
		t.Fatalf("%d seconds with %d values; the run had %d requests in 2.5 s", len(seconds), total, want)
	}
}
