package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

const testToken = "test-token"

// listen returns a listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// runConfig is an open-loop run against srv.
func runConfig(t *testing.T, srv *sim.Server, rate float64, d time.Duration) bench.Config {
	return bench.Config{
		URL: srv.PredictURL(), DataPath: testkit.File(t, "data.json", `{"instances": [[1.0, 2.0, 3.0, 4.0]]}`),
		Plan:    load.Plan{Rate: rate, Duration: d, MaxInflight: 100, Grace: time.Second},
		Timeout: 5 * time.Second, Settings: map[string]any{"rate": rate},
	}
}

// workerRun is one in-process worker: what it returned and the result
// it sent.
type workerRun struct {
	err error
	res *report.Result
}

// startWorkers starts n in-process workers joining addr; wait returns
// what each did.
func startWorkers(ctx context.Context, t *testing.T, addr, token string, n int) (wait func() []workerRun) {
	t.Helper()
	out := make([]workerRun, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := WorkerConfig{Coordinator: addr, Token: token, Name: fmt.Sprintf("w%d", i+1), JoinTimeout: time.Minute, TempDir: t.TempDir(),
				Result: func(r *report.Result) { out[i].res = r }}
			out[i].err = Work(ctx, cfg)
		}()
	}
	return func() []workerRun { wg.Wait(); return out }
}

func TestCoordinatedRunMergesTheWorkersExactly(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 150, 2*time.Second), Workers: 3, Listener: ln, Token: testToken, StartDelay: 300 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 3)
	res, err := Coordinate(context.Background(), cfg)
	runs := wait()
	if err != nil {
		t.Fatal(err)
	}
	var own []*report.Result
	var sum int64
	for i, w := range runs {
		if w.err != nil || w.res == nil {
			t.Fatalf("worker %d: %v (result %v)", i+1, w.err, w.res != nil)
		}
		own = append(own, w.res)
		sum += w.res.Requests
	}
	if res.Requests != sum {
		t.Errorf("merged %d requests, the workers %d between them", res.Requests, sum)
	}
	// The coordinator's merge is report.Merge's, bucket for bucket: the
	// workers' histograms merged here give the same encoding.
	want, _, err := report.Merge(own, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := report.DecodeHistogram(res.Histogram)
	exp, _ := report.DecodeHistogram(want.Histogram)
	if !got.Equals(exp) {
		t.Errorf("merged histogram differs from the merge of the workers' own: %v vs %v", got.TotalCount(), exp.TotalCount())
	}
	if len(res.Workers) != 3 {
		t.Fatalf("workers: %+v", res.Workers)
	}
	for _, w := range res.Workers {
		if w.Status != report.WorkerOK || w.Share != 50 {
			t.Errorf("worker %d: %+v", w.Index, w)
		}
	}
	if res.Rate != 150 {
		t.Errorf("rate %v, want the whole run's 150", res.Rate)
	}
	// Each worker's payload round-robin and load were its own share.
	for _, r := range own {
		if r.Rate != 50 {
			t.Errorf("a worker ran at %v req/s, want 50", r.Rate)
		}
	}
}

func TestSharesAddUpToTheWholeRun(t *testing.T) {
	p := PlanSpec{Rate: 90, Concurrency: 0, Requests: 10, WarmupRequests: 5, MaxInflight: 7}
	var total PlanSpec
	for i := range 3 {
		s := shareOf(p, i, 3)
		total.Requests += s.Requests
		total.WarmupRequests += s.WarmupRequests
		total.MaxInflight += s.MaxInflight
		if s.Rate != 30 {
			t.Errorf("worker %d: rate %v", i, s.Rate)
		}
	}
	if total.Requests != 10 || total.WarmupRequests != 5 || total.MaxInflight != 7 {
		t.Errorf("shares add up to %+v, want the whole %+v", total, p)
	}
}

// Every setting of the plan that a worker needs travels to it.
func TestPlanSpecCarriesThePlan(t *testing.T) {
	p := load.Plan{Rate: 90, WarmupDuration: time.Second, WarmupRequests: 5, Duration: 2 * time.Second, Requests: 10,
		MaxInflight: 7, Grace: 3 * time.Second, SendSlack: 250 * time.Microsecond}
	if got := planSpecOf(p).plan(); !reflect.DeepEqual(got, p) {
		t.Errorf("the plan came back as %+v, want %+v", got, p)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 10, time.Second), Workers: 1, Listener: ln, Token: testToken, JoinTimeout: 2 * time.Second}
	done := make(chan error, 1)
	go func() { _, err := Coordinate(context.Background(), cfg); done <- err }()
	err := Work(context.Background(), WorkerConfig{Coordinator: ln.Addr().String(), Token: "guess", JoinTimeout: 30 * time.Second})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %v, want a 401 refusal", err)
	}
	// The coordinator, with nobody joined, gives up at its timeout.
	var te *bench.TargetError
	if err := <-done; !errors.As(err, &te) {
		t.Fatalf("coordinator without workers: %v, want a TargetError", err)
	}
}

func TestWorkerThatNeverJoinsIsReportedAndTheOthersShareTheLoad(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 100, time.Second), Workers: 3, Listener: ln, Token: testToken, JoinTimeout: 2 * time.Second, StartDelay: 200 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	wait()
	var we *WorkersError
	if !errors.As(err, &we) || len(we.Missing) != 1 || we.Missing[0].Status != report.WorkerNeverJoined {
		t.Fatalf("err %v, want one worker never joined", err)
	}
	if res == nil || len(res.Workers) != 3 {
		t.Fatalf("result %+v", res)
	}
	ok := 0
	for _, w := range res.Workers {
		if w.Status == report.WorkerOK {
			ok++
			if w.Share != 50 {
				t.Errorf("worker %d had share %v; two workers share 100 req/s", w.Index, w.Share)
			}
		}
	}
	if ok != 2 || res.Workers[2].Status != report.WorkerNeverJoined {
		t.Errorf("workers %+v", res.Workers)
	}
}

// silentWorker joins by the protocol and then says nothing more: a worker
// killed after its join.
func silentWorker(t *testing.T, addr string) {
	c := &client{base: baseURL(addr), token: testToken, http: &http.Client{}}
	var r joinReply
	if err := c.call(context.Background(), pathJoin, joinRequest{Protocol: ProtocolVersion, Name: "dies"}, &r, time.Minute); err != nil {
		t.Errorf("silent worker: %v", err)
	}
}

func TestWorkerLostMidRunIsReportedAndTheOthersKept(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 60, 2*time.Second), Workers: 3, Listener: ln, Token: testToken,
		StartDelay: 200 * time.Millisecond, HeartbeatEvery: 100 * time.Millisecond, LostAfter: 2 * time.Second}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	go silentWorker(t, ln.Addr().String())
	res, err := Coordinate(context.Background(), cfg)
	runs := wait()
	var we *WorkersError
	if !errors.As(err, &we) || len(we.Missing) != 1 || we.Missing[0].Status != report.WorkerLost {
		t.Fatalf("err %v, want one worker lost", err)
	}
	var sum int64
	for _, w := range runs {
		if w.res == nil {
			t.Fatalf("a live worker sent nothing: %v", w.err)
		}
		sum += w.res.Requests
	}
	if res.Requests != sum || sum == 0 {
		t.Errorf("merged %d requests, the two live workers %d", res.Requests, sum)
	}
}

func TestInterruptedCoordinatorStopsEveryWorkerAndMerges(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	// A run far longer than the test: only the interrupt ends it.
	cfg := Config{Run: runConfig(t, srv, 60, time.Hour), Workers: 2, Listener: ln, Token: testToken,
		StartDelay: 200 * time.Millisecond, HeartbeatEvery: 100 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Interrupt once the server has seen load from both workers.
		for srv.Predicts() < 40 {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	res, err := Coordinate(ctx, cfg)
	runs := wait()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted {
		t.Error("the merged result does not say interrupted")
	}
	var sum int64
	for i, w := range runs {
		if w.err != nil || w.res == nil || !w.res.Interrupted {
			t.Fatalf("worker %d: %v, interrupted result %v", i+1, w.err, w.res != nil && w.res.Interrupted)
		}
		sum += w.res.Requests
	}
	if res.Requests != sum || sum == 0 {
		t.Errorf("merged %d requests, the workers %d", res.Requests, sum)
	}
	for _, w := range res.Workers {
		if w.Status != report.WorkerInterrupted {
			t.Errorf("worker %d: %s, want interrupted", w.Index, w.Status)
		}
	}
}

func TestClockTooFarOffIsRefused(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 10, time.Second), Workers: 1, Listener: ln, Token: testToken, JoinTimeout: time.Second, MaxClockOffset: time.Millisecond}
	done := make(chan error, 1)
	go func() { _, err := Coordinate(context.Background(), cfg); done <- err }()
	c := &client{base: baseURL(ln.Addr().String()), token: testToken, http: &http.Client{}}
	err := c.call(context.Background(), pathJoin, joinRequest{Protocol: ProtocolVersion, Name: "skewed", OffsetNs: int64(time.Second)}, nil, time.Minute)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusConflict {
		t.Fatalf("a worker 1s off with --max-clock-offset 1ms: %v, want refused", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the coordinator ran without its only worker")
	}
}

func TestCoordinatedClosedLoopOverGRPCSplitsConcurrencyAndRequests(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	run := bench.Config{
		GRPC: bench.GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()}, DataPath: testkit.File(t, "data.json", `{"instances": [[1.0, 2.0, 3.0, 4.0]]}`),
		Plan: load.Plan{Concurrency: 5, Requests: 301, Grace: time.Second}, Timeout: 5 * time.Second,
	}
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 200 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	runs := wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 301 || res.Transport != "grpc" || res.Loop != "closed" || res.Concurrency != 5 {
		t.Errorf("merged: %d requests over %s, %s loop, concurrency %d; want 301 over grpc, closed, 5", res.Requests, res.Transport, res.Loop, res.Concurrency)
	}
	shares := map[float64]bool{}
	for _, w := range res.Workers {
		shares[w.Share] = true
	}
	if !shares[3] || !shares[2] {
		t.Errorf("shares %v, want 3 and 2 in flight", shares)
	}
	if runs[0].res.Requests+runs[1].res.Requests != 301 {
		t.Errorf("workers sent %d and %d", runs[0].res.Requests, runs[1].res.Requests)
	}
}

func TestSweepRunsEachStepOnTheSameWorkers(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	base := runConfig(t, srv, 40, time.Second)
	cfg := Config{Run: base, Workers: 2, Listener: ln, Token: testToken, StartDelay: 200 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := bench.RunSweep(context.Background(), bench.SweepConfig{Base: base, Steps: bench.Steps{Values: []float64{40, 80}}, SLO: report.SLO{ErrPct: -1}, Run: s.Run})
	s.Close()
	runs := wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Steps) != 2 {
		t.Fatalf("%d steps", len(sw.Steps))
	}
	for i, step := range sw.Steps {
		r := step.Result
		if len(r.Workers) != 2 || r.Rate != step.Level || r.Workers[0].Share != step.Level/2 || r.Workers[0].Status != report.WorkerOK {
			t.Errorf("step %d: rate %v, workers %+v", i+1, r.Rate, r.Workers)
		}
		if len(r.MergedFrom) != 2 {
			t.Errorf("step %d merged %d results", i+1, len(r.MergedFrom))
		}
	}
	// The workers ran both steps and then left, told there was no more.
	for i, w := range runs {
		if w.err != nil || w.res == nil || w.res.Rate != 40 {
			t.Errorf("worker %d: %v, last result at %v req/s", i+1, w.err, w.res.Rate)
		}
	}
}

func TestClockOffsetWarnLetsTheWorkerInAndAnExtraWorkerIsRefused(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	ln := listen(t)
	var log strings.Builder
	var mu sync.Mutex
	cfg := Config{Run: runConfig(t, srv, 10, 500*time.Millisecond), Workers: 1, Listener: ln, Token: testToken, MaxClockOffset: time.Millisecond,
		WarnClockOffset: true, StartDelay: 100 * time.Millisecond, Log: lockedWriter{&mu, &log}}
	done := make(chan error, 1)
	go func() { _, err := Coordinate(context.Background(), cfg); done <- err }()
	c := &client{base: baseURL(ln.Addr().String()), token: testToken, http: &http.Client{}}
	joined := make(chan error, 1)
	go func() {
		// A worker 2 s off, which then runs its share as a worker would.
		var r joinReply
		err := c.call(context.Background(), pathJoin, joinRequest{Protocol: ProtocolVersion, Name: "skewed", OffsetNs: int64(2 * time.Second)}, &r, time.Minute)
		if err == nil {
			_, err = runShare(context.Background(), c, WorkerConfig{TempDir: t.TempDir()}, r, 2*time.Second, func(string, ...any) {})
		}
		if err == nil {
			_, err = c.awaitNext(context.Background(), r)
		}
		joined <- err
	}()
	// Wait until the first has joined, then try a second.
	for {
		mu.Lock()
		in := strings.Contains(log.String(), "joined")
		mu.Unlock()
		if in {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	err := c.call(context.Background(), pathJoin, joinRequest{Protocol: ProtocolVersion, Name: "extra"}, nil, time.Minute)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusConflict {
		t.Errorf("a worker beyond --workers: %v, want refused", err)
	}
	if err := <-joined; err != nil {
		t.Fatalf("the skewed worker with --clock-offset warn: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(log.String(), "warning: worker \"skewed\"") {
		t.Errorf("no warning about the clock:\n%s", log.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestCoordinatorReportsTheWorkersProgress(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	var progress strings.Builder
	var mu sync.Mutex
	cfg := Config{Run: runConfig(t, srv, 100, 2*time.Second), Workers: 2, Listener: ln, Token: testToken, StartDelay: 100 * time.Millisecond,
		HeartbeatEvery: 100 * time.Millisecond, Progress: lockedWriter{&mu, &progress}, ProgressEvery: 300 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	if _, err := Coordinate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	wait()
	mu.Lock()
	defer mu.Unlock()
	// Some line counted steady requests the workers had sent by then.
	found := false
	for _, line := range strings.Split(progress.String(), "\n") {
		var running int
		var n, errs int64
		if _, err := fmt.Sscanf(line, "loadprof coordinator: %d workers running: %d steady requests, %d errors so far", &running, &n, &errs); err == nil && n > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no progress line with steady requests:\n%s", progress.String())
	}
}

func TestCoordinatorScrapesTheServersMetricsOverTheCombinedLoad(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	run := runConfig(t, srv, 100, 3*time.Second)
	run.Metrics = &bench.MetricsConfig{URLs: []string{srv.MetricsURL()}, Interval: 500 * time.Millisecond, Timeout: 2 * time.Second}
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 300 * time.Millisecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	res, err := Coordinate(context.Background(), cfg)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	s := res.Server
	if s == nil || s.Requests == nil || s.Window != "steady" {
		t.Fatalf("server block %+v", s)
	}
	t.Logf("server %v, workers %v", *s.Requests, res.Requests)
	// The server counted the steady requests of both workers (and their
	// preflights, sent after the common start).
	if got, want := *s.Requests, float64(res.Requests); got < want*0.95 || got > want*1.05+2 {
		t.Errorf("the server counted %v requests over the steady phase, the workers %v", got, want)
	}
}

// Every setting of a run reaches the workers, or stays with the
// coordinator on purpose: a new bench.Config field fails this test until
// someone decides which.
func TestEveryRunSettingReachesTheWorkersOrStaysOnPurpose(t *testing.T) {
	carried := map[string]bool{"URL": true, "GRPC": true, "Headers": true, "DataPath": true, "Stdin": true, "MaxPayloadBytes": true,
		"PayloadOffset": true, "Plan": true, "Timeout": true, "MaxResponseBytes": true, "TLS": true, "RESTEngine": true,
		"V2Binary": true, "Settings": true, "RemoteWindow": true, "SLO": true, "SLOSpec": true}
	coordinatorOnly := map[string]string{
		"Profile":       "the coordinator opens the one window",
		"Metrics":       "the coordinator scrapes the server",
		"IntervalLog":   "the coordinator writes the merged log from the seconds the workers send",
		"Progress":      "the coordinator prints the workers' progress",
		"ProgressEvery": "the coordinator prints the workers' progress",
		"Watch":         "the worker's own heartbeat",
		"Warnings":      "each process writes its own",
		"StartAt":       "the worker's AwaitStart gives the common start",
		"AwaitStart":    "the worker asks the coordinator for the common start",
	}
	ct := reflect.TypeOf(bench.Config{})
	for i := range ct.NumField() {
		name := ct.Field(i).Name
		if !carried[name] && coordinatorOnly[name] == "" {
			t.Errorf("bench.Config.%s: neither sent to workers (RunSpec) nor listed as the coordinator's own", name)
		}
	}

	// What is carried arrives: the protocol choices of a V2 target.
	run := bench.Config{URL: "http://127.0.0.1:1/v2/models/m/infer", V2Binary: true,
		GRPC:     bench.GRPCTarget{Protocol: bench.ProtocolV2, TensorContent: true},
		DataPath: testkit.File(t, "data.json", `{"instances": [[1.0, 2.0]]}`), Plan: load.Plan{Rate: 10, Duration: time.Second}}
	spec, _, err := specOf(run)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var got RunSpec
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	cfg, err := got.benchConfig(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.V2Binary || cfg.GRPC.Protocol != bench.ProtocolV2 || !cfg.GRPC.TensorContent || cfg.URL != run.URL {
		t.Errorf("the worker's run lost settings: V2Binary %v, protocol %q, tensor content %v, url %q", cfg.V2Binary, cfg.GRPC.Protocol, cfg.GRPC.TensorContent, cfg.URL)
	}
}

// A worker stopped on its own machine (Ctrl-C there) did not run its
// share: the coordinator says so (exit 5), and the merged throughput is
// the requests over the merged span, not the workers' paces added.
func TestWorkerInterruptedOnItsOwnIsMissingAndThroughputIsNotOverstated(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 100, 3*time.Second), Workers: 2, Listener: ln, Token: testToken,
		StartDelay: 200 * time.Millisecond, HeartbeatEvery: 100 * time.Millisecond}
	whole := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	early := startWorkers(ctx, t, ln.Addr().String(), testToken, 1)
	go func() {
		for srv.Predicts() < 30 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	res, err := Coordinate(context.Background(), cfg)
	whole()
	early()
	var we *WorkersError
	if !errors.As(err, &we) || len(we.Missing) != 1 || we.Missing[0].Status != report.WorkerInterrupted {
		t.Fatalf("err %v, want the worker interrupted on its own reported missing", err)
	}
	if res == nil {
		t.Fatal("no merged result")
	}
	span := res.Phases.Steady.End - res.Phases.Steady.Start
	if span <= 0 || res.ThroughputRPS > float64(res.Requests)/span*1.001 {
		t.Errorf("merged throughput %.1f req/s, more than its %d requests over the merged steady span %.2f s", res.ThroughputRPS, res.Requests, span)
	}
}

// A worker that hears the common start after it has passed begins late:
// the coordinator tells from the start the worker reports, counts it as
// late and the run as lacking a worker.
func TestWorkerWhoseStartReplyComesLateIsReportedLate(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 60, 2*time.Second), Workers: 2, Listener: ln, Token: testToken,
		StartDelay: 200 * time.Millisecond, HeartbeatEvery: 100 * time.Millisecond}
	// The second worker reaches the coordinator through a proxy that
	// holds the reply that gives the start for a second: a slow link.
	target, _ := url.Parse("http://" + ln.Addr().String())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.URL.Path == pathReady {
			time.Sleep(time.Second)
		}
		return nil
	}
	slow := httptest.NewServer(proxy)
	defer slow.Close()
	fast := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 1)
	late := startWorkers(context.Background(), t, slow.URL, testToken, 1)
	res, err := Coordinate(context.Background(), cfg)
	fast()
	late()
	var we *WorkersError
	if !errors.As(err, &we) || len(we.Missing) != 1 || we.Missing[0].Status != report.WorkerLate {
		t.Fatalf("err %v, want the late worker reported late", err)
	}
	if res == nil || len(res.Workers) != 2 {
		t.Fatalf("result %+v", res)
	}
}

// --worker-start-tolerance: a worker whose start reply comes a second
// late is on time under a tolerance of 5 s, and late under 250 ms.
func TestStartToleranceDecidesWhenAWorkerIsLate(t *testing.T) {
	for _, c := range []struct {
		tolerance time.Duration
		want      string
	}{{5 * time.Second, report.WorkerOK}, {250 * time.Millisecond, report.WorkerLate}} {
		srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
		ln := listen(t)
		cfg := Config{Run: runConfig(t, srv, 40, time.Second), Workers: 1, Listener: ln, Token: testToken,
			StartDelay: 100 * time.Millisecond, HeartbeatEvery: 100 * time.Millisecond, StartTolerance: c.tolerance}
		target, _ := url.Parse("http://" + ln.Addr().String())
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ModifyResponse = func(r *http.Response) error {
			if r.Request.URL.Path == pathReady {
				time.Sleep(time.Second)
			}
			return nil
		}
		slow := httptest.NewServer(proxy)
		wait := startWorkers(context.Background(), t, slow.URL, testToken, 1)
		res, _ := Coordinate(context.Background(), cfg)
		wait()
		slow.Close()
		if res == nil || len(res.Workers) != 1 || res.Workers[0].Status != c.want {
			t.Errorf("tolerance %v: workers %+v, want %s", c.tolerance, res.Workers, c.want)
		}
	}
}

// Every endpoint of the coordinator and of ServeResults refuses another
// method (405) and a call without the token (401).
func TestEveryEndpointChecksItsMethodAndTheToken(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	c, err := newCoordinator(Config{Run: runConfig(t, srv, 10, time.Second), Workers: 1, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	coord := httptest.NewServer(c.handler())
	defer coord.Close()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeResults(ctx, ln, testToken, t.TempDir(), time.Minute, nil) }()
	defer func() { cancel(); <-served }()
	results := "http://" + ln.Addr().String()
	for _, e := range []struct{ base, path, method, other string }{
		{coord.URL, pathClock, http.MethodPost, http.MethodGet}, {coord.URL, pathJoin, http.MethodPost, http.MethodGet},
		{coord.URL, pathHeartbeat, http.MethodPost, http.MethodGet}, {coord.URL, pathResult, http.MethodPost, http.MethodGet},
		{coord.URL, pathNext, http.MethodPost, http.MethodGet}, {coord.URL, pathReady, http.MethodPost, http.MethodGet},
		{results, pathResults, http.MethodGet, http.MethodPost}, {results, pathResultsAck, http.MethodPost, http.MethodGet},
	} {
		for _, call := range []struct {
			method, token string
			want          int
		}{{e.other, testToken, http.StatusMethodNotAllowed}, {e.method, "", http.StatusUnauthorized}, {e.method, "guess", http.StatusUnauthorized}} {
			req, _ := http.NewRequest(call.method, e.base+e.path, strings.NewReader("{}"))
			if call.token != "" {
				req.Header.Set("Authorization", "Bearer "+call.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != call.want {
				t.Errorf("%s %s with token %q: %d, want %d", call.method, e.path, call.token, resp.StatusCode, call.want)
			}
		}
	}
}

// Every worker asked for has one workers[] entry, and the error names
// each missing one by the index it has there: a late worker (joined),
// a refused one, and two that never joined.
func TestEveryMissingWorkerHasOneEntryWithTheIndexTheErrorGives(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	cfg := Config{Run: runConfig(t, srv, 40, time.Second), Workers: 4, Listener: ln, Token: testToken, JoinTimeout: 3 * time.Second,
		StartDelay: 100 * time.Millisecond, HeartbeatEvery: 100 * time.Millisecond}
	target, _ := url.Parse("http://" + ln.Addr().String())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.URL.Path == pathReady {
			time.Sleep(time.Second)
		}
		return nil
	}
	slow := httptest.NewServer(proxy)
	defer slow.Close()
	type outcome struct {
		res *report.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() { res, err := Coordinate(context.Background(), cfg); done <- outcome{res, err} }()
	late := startWorkers(context.Background(), t, slow.URL, testToken, 1)
	c := &client{base: baseURL(ln.Addr().String()), token: testToken, http: &http.Client{}}
	if err := c.call(context.Background(), pathJoin, joinRequest{Protocol: ProtocolVersion, Name: "skewed", OffsetNs: int64(time.Minute)}, nil, time.Minute); err == nil {
		t.Fatal("a worker a minute off was let in")
	}
	o := <-done
	res, err := o.res, o.err
	late()
	var we *WorkersError
	if !errors.As(err, &we) || res == nil {
		t.Fatalf("err %v, result %v", err, res != nil)
	}
	var statuses []string
	for i, w := range res.Workers {
		statuses = append(statuses, w.Status)
		if w.Index != i+1 {
			t.Errorf("workers[%d] has index %d", i, w.Index)
		}
	}
	if want := []string{report.WorkerLate, report.WorkerRefused, report.WorkerNeverJoined, report.WorkerNeverJoined}; !reflect.DeepEqual(statuses, want) {
		t.Fatalf("statuses %v, want %v (one entry per worker asked for)", statuses, want)
	}
	if len(we.Missing) != 4 {
		t.Fatalf("the error names %d workers: %v", len(we.Missing), err)
	}
	for _, m := range we.Missing {
		if m.Index < 1 || m.Index > len(res.Workers) || res.Workers[m.Index-1].Status != m.Status {
			t.Errorf("the error's worker %d (%s) is not workers[%d]", m.Index, m.Status, m.Index-1)
		}
	}
	if !strings.Contains(err.Error(), "2 workers never joined: 3..4") {
		t.Errorf("err %v", err)
	}
}

// Many workers missing for one reason make one part of the line, not one
// each; a single missing worker is named.
func TestWorkersErrorSummarisesARunOfMissingWorkers(t *testing.T) {
	missing := []report.WorkerReport{{Index: 1, Name: "pod-0", Status: report.WorkerLost, Error: "silent"}}
	for i := 2; i <= 1000; i++ {
		missing = append(missing, report.WorkerReport{Index: i, Status: report.WorkerNeverJoined, Error: "did not join within 1m0s"})
	}
	got := (&WorkersError{Missing: missing}).Error()
	want := "the result lacks worker 1 (pod-0) lost (silent), 999 workers never joined: 2..1000 (did not join within 1m0s)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A sweep says it in a few words.
	if got, want := (&WorkersError{Missing: missing}).SweepStop(), "worker 1 (pod-0) lost, worker 2 never joined, worker 3 never joined, and 997 more"; got != want {
		t.Errorf("SweepStop: got %q\nwant %q", got, want)
	}
}

// The log counts in words ("1 worker"), names each worker, and the
// progress stops once every worker is done.
func TestCoordinatorLogSaysOneWorkerAndNoProgressAfterTheEnd(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	var log, progress strings.Builder
	var mu sync.Mutex
	cfg := Config{Run: runConfig(t, srv, 50, time.Second), Workers: 1, Listener: ln, Token: testToken, StartDelay: 100 * time.Millisecond,
		HeartbeatEvery: 50 * time.Millisecond, Log: lockedWriter{&mu, &log}, Progress: lockedWriter{&mu, &progress}, ProgressEvery: time.Nanosecond}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 1)
	if _, err := Coordinate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	wait()
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"waiting for 1 worker on", "1 worker ready after", "worker 1 (w1) done: ok"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(progress.String(), "0 workers running") || strings.Contains(log.String()+progress.String(), "1 workers") {
		t.Errorf("progress or log:\n%s%s", log.String(), progress.String())
	}
}

// A worker's seconds reach the coordinator once each: lines split
// across writes are whole when taken, a batch sent again (its answer
// lost) is not counted twice, and what the coordinator holds is dropped.
func TestSecondsTapSendsEachIntervalOnce(t *testing.T) {
	tap := &secondsTap{}
	log := "#[Logged with loadprof x]\n#[BaseTime: 1795000000.250 (seconds since epoch)]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n" +
		"Tag=warmup,0.000,1.000,1.000,AAAA\n#[Profile window opened in the second starting at 1.000]\n1.000,1.000,2.000,BBBB\n2.000,1.000,2.000,CCCC\n"
	for i := 0; i < len(log); i += 7 {
		_, _ = tap.Write([]byte(log[i:min(i+7, len(log))]))
	}
	first := tap.batch(2)
	if first.OriginNs != time.UnixMilli(1_795_000_000_250).UnixNano() || first.From != 0 || len(first.Seconds) != 2 ||
		first.Seconds[0] != (wireInterval{Second: 0, Tag: tagWarmup, Histogram: "AAAA"}) || first.Seconds[1] != (wireInterval{Second: 1, Histogram: "BBBB"}) {
		t.Fatalf("first batch %+v", first)
	}
	var held workerSeconds
	if have := held.add(first); have != 2 {
		t.Fatalf("held %d", have)
	}
	// The answer was lost: the worker sends it again with what follows.
	again := tap.batch(0)
	if have := held.add(again); have != 3 || held.intervals[2].Histogram != "CCCC" {
		t.Fatalf("held %+v", held.intervals)
	}
	tap.acked(3)
	if rest := tap.batch(0); rest.From != 3 || len(rest.Seconds) != 0 {
		t.Errorf("after the ack: %+v", rest)
	}
	if have := held.add(again); have != 3 {
		t.Errorf("a batch sent a third time: held %d", have)
	}
}

// Ctrl-C after every worker joined but before the common start: the
// result says interrupted, with every worker's entry, and the workers,
// told to stop, exit without asking for a next round (with LostAfter an
// hour they would otherwise wait that long for a coordinator that has
// closed).
func TestInterruptBeforeTheCommonStartWritesAnInterruptedResultAndReleasesTheWorkers(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	ln := listen(t)
	var mu sync.Mutex
	var log strings.Builder
	cfg := Config{Run: runConfig(t, srv, 20, time.Hour), Workers: 2, Listener: ln, Token: testToken,
		StartDelay: time.Hour, HeartbeatEvery: 100 * time.Millisecond, LostAfter: time.Hour, Log: lockedWriter{&mu, &log}}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			mu.Lock()
			started := strings.Contains(log.String(), "start at")
			mu.Unlock()
			if started {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	res, err := Coordinate(ctx, cfg)
	if err != nil || res == nil {
		t.Fatalf("result %v, err %v", res, err)
	}
	if !res.Interrupted || res.Requests != 0 || len(res.Workers) != 2 {
		t.Errorf("interrupted %v, %d requests, workers %+v", res.Interrupted, res.Requests, res.Workers)
	}
	for _, w := range res.Workers {
		if w.Status != report.WorkerInterrupted {
			t.Errorf("worker %d: %s (%s), want interrupted", w.Index, w.Status, w.Error)
		}
	}
	if _, err := report.DecodeHistogram(res.Histogram); err != nil {
		t.Errorf("histogram: %v", err)
	}
	var summary strings.Builder
	report.WriteSummary(&summary, res) // what run prints of it
	if !strings.Contains(summary.String(), "interrupted") {
		t.Errorf("summary:\n%s", summary.String())
	}
	done := make(chan []workerRun)
	go func() { done <- wait() }()
	select {
	case runs := <-done:
		for i, w := range runs {
			if w.err != nil {
				t.Errorf("worker %d: %v", i+1, w.err)
			}
		}
	case <-time.After(time.Minute): // far below LostAfter
		t.Fatal("the workers told to stop are still waiting for a next round")
	}
}

// A worker's name beyond a DNS name's length is refused at join with a
// clear message, and every endpoint refuses a body beyond its bound with
// 413 rather than reading it.
func TestCoordinatorBoundsNamesAndBodies(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	c, err := newCoordinator(Config{Run: runConfig(t, srv, 10, time.Second), Workers: 1, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	coord := httptest.NewServer(c.handler())
	defer coord.Close()
	cl := &client{base: coord.URL, token: testToken, http: &http.Client{}}
	err = cl.call(context.Background(), pathJoin, joinRequest{Protocol: ProtocolVersion, Name: strings.Repeat("n", MaxWorkerName+1)}, &joinReply{}, time.Minute)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Msg, "worker name of 254 bytes: at most 253") {
		t.Errorf("a 254-byte name: %v", err)
	}
	if c.joined() != 0 {
		t.Errorf("%d joined", c.joined())
	}
	for path, limit := range map[string]int{pathJoin: maxSmallMessage, pathNext: maxSmallMessage, pathHeartbeat: maxHeartbeat} { // a result's bound (256 MiB) is too much for a test to send
		// A JSON string one byte longer than the bound.
		body := `{"name":"` + strings.Repeat("x", limit) + `"}`
		req, _ := http.NewRequest(http.MethodPost, coord.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), fmt.Sprintf("larger than %d bytes", limit)) {
			t.Errorf("%s with %d bytes: %d %s", path, len(body), resp.StatusCode, msg)
		}
	}
}
