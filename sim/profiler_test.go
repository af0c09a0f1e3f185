package sim

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestTraceEventsPadTheReturnedTraceWithAGPUPlane(t *testing.T) {
	const extra = 2*paddingEventsPerLine + 7
	s := start(t, Config{Profiler: ProfilerConfig{TraceEvents: extra}})
	cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A call in the window, so that the sim's own plane has an event.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = tfproto.NewPredictionServiceClient(cc).Predict(ctx, &tfproto.PredictRequest{
			ModelSpec: &tfproto.ModelSpec{Name: "test_model"},
			Inputs:    map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1, 4}, 1, 2, 3, 4)}})
	}()
	resp, err := tfproto.NewProfilerServiceClient(cc).Profile(ctx, &tfproto.ProfileRequest{
		EmitXspace: true, SessionId: "s", HostName: "h", Opts: &tfproto.ProfileOptions{DurationMs: 300}})
	if err != nil {
		t.Fatal(err)
	}
	planes := map[string]*tfproto.XPlane{}
	for _, p := range resp.GetXspace().GetPlanes() {
		planes[p.GetName()] = p
	}
	if resp.GetEmptyTrace() || len(planes["/host:CPU"].GetLines()) == 0 {
		t.Fatalf("the sim's own plane is missing or empty: %v", resp.GetXspace())
	}
	gpu := planes["/device:GPU:0"]
	var events int
	var last int64
	for _, l := range gpu.GetLines() {
		events += len(l.GetEvents())
		for _, e := range l.GetEvents() {
			if gpu.GetEventMetadata()[e.GetMetadataId()].GetName() == "" || e.GetDurationPs() != 800_000 {
				t.Fatalf("event %v", e)
			}
			last = e.GetOffsetPs()
		}
	}
	if events != extra || len(gpu.GetLines()) != 3 || last != 6*1_000_000 {
		t.Fatalf("%d events on %d lines (last offset %d), want %d on 3", events, len(gpu.GetLines()), last, extra)
	}
}

func TestTraceCountsFromTheWindowsStartOnTheSimsOwnClock(t *testing.T) {
	const offset = 3 * time.Hour
	s := start(t, Config{Profiler: ProfilerConfig{ClockOffset: offset}})
	cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = tfproto.NewPredictionServiceClient(cc).Predict(ctx, &tfproto.PredictRequest{
			ModelSpec: &tfproto.ModelSpec{Name: "test_model"},
			Inputs:    map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1, 4}, 1, 2, 3, 4)}})
	}()
	sent := time.Now()
	resp, err := tfproto.NewProfilerServiceClient(cc).Profile(ctx, &tfproto.ProfileRequest{
		EmitXspace: true, SessionId: "s", HostName: "h", Opts: &tfproto.ProfileOptions{DurationMs: 300}})
	answered := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	var env, host *tfproto.XPlane
	for _, p := range resp.GetXspace().GetPlanes() {
		switch p.GetName() {
		case "Task Environment":
			env = p
		case "/host:CPU":
			host = p
		}
	}
	stats := map[string]int64{}
	for _, st := range env.GetStats() {
		stats[env.GetStatMetadata()[st.GetMetadataId()].GetName()] = int64(st.GetUint64Value())
	}
	begin, end := stats["profile_start_time"], stats["profile_stop_time"]
	if begin < sent.Add(offset).UnixNano() || end > answered.Add(offset).UnixNano() || end-begin < int64(300*time.Millisecond) {
		t.Fatalf("window %d..%d, call %d..%d (+%v)", begin, end, sent.UnixNano(), answered.UnixNano(), offset)
	}
	var predicts int
	for _, l := range host.GetLines() {
		for _, e := range l.GetEvents() {
			at := l.GetTimestampNs() + e.GetOffsetPs()/1000
			if host.GetEventMetadata()[e.GetMetadataId()].GetName() == "Predict" {
				predicts++
				if at < 0 || at > end-begin {
					t.Fatalf("a Predict event at %d ns from the start of a %d ns window", at, end-begin)
				}
			}
		}
	}
	if predicts != 1 {
		t.Fatalf("%d Predict events", predicts)
	}
}

// The trace and the metrics say the same service time of a call: both
// are its measured time from arrival to the end of its wait, not the
// planned one (a busy machine wakes the timer late).
func TestTheTraceAndTheMetricsAgreeOnServiceTime(t *testing.T) {
	s := start(t, Config{Latency: Latency{Fixed: 2 * time.Millisecond, Jitter: 2 * time.Millisecond}})
	cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type answer struct {
		resp *tfproto.ProfileResponse
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := tfproto.NewProfilerServiceClient(cc).Profile(ctx, &tfproto.ProfileRequest{
			EmitXspace: true, SessionId: "agree", HostName: "h", Opts: &tfproto.ProfileOptions{DurationMs: 120_000}})
		answered <- answer{resp, err}
	}()
	for !s.Profiling() {
		select {
		case a := <-answered:
			t.Fatalf("the window closed before it opened: %v", a.err)
		case <-time.After(time.Millisecond):
		}
	}
	runtimeSum := func() (count, sumUs int64) {
		_, _, page := call(t, "GET", s.MetricsURL(), "")
		for _, line := range strings.Split(page, "\n") {
			name, value, _ := strings.Cut(line, "} ")
			v, _ := strconv.ParseInt(value, 10, 64)
			switch {
			case strings.HasPrefix(name, ":tensorflow:serving:runtime_latency_sum{"):
				sumUs = v
			case strings.HasPrefix(name, ":tensorflow:serving:runtime_latency_count{"):
				count = v
			}
		}
		return count, sumUs
	}
	count0, sum0 := runtimeSum()
	const restN, grpcN = 12, 8
	for range restN {
		if code, _, raw := call(t, "POST", s.PredictURL(), `{"instances": [[1, 2, 3, 4]]}`); code != 200 {
			t.Fatalf("predict: %d %s", code, raw)
		}
	}
	for range grpcN {
		if _, err := tfproto.NewPredictionServiceClient(cc).Predict(ctx, &tfproto.PredictRequest{
			ModelSpec: &tfproto.ModelSpec{Name: "test_model"},
			Inputs:    map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1, 4}, 1, 2, 3, 4)}}); err != nil {
			t.Fatal(err)
		}
	}
	count1, sum1 := runtimeSum()
	if _, err := tfproto.NewProfilerServiceClient(cc).Terminate(ctx, &tfproto.TerminateRequest{SessionId: "agree"}); err != nil {
		t.Fatal(err)
	}
	a := <-answered
	if a.err != nil {
		t.Fatal(a.err)
	}
	var events int64
	var tracePs int64
	for _, p := range a.resp.GetXspace().GetPlanes() {
		for _, l := range p.GetLines() {
			for _, e := range l.GetEvents() {
				if p.GetEventMetadata()[e.GetMetadataId()].GetName() == "Predict" {
					events++
					tracePs += e.GetDurationPs()
				}
			}
		}
	}
	calls, metricUs := count1-count0, sum1-sum0
	if events != restN+grpcN || calls != restN+grpcN {
		t.Fatalf("%d calls in the trace, %d in runtime_latency, want %d", events, calls, restN+grpcN)
	}
	// The metric keeps whole microseconds of each call: up to 1 us a
	// call below the trace's picoseconds, never above.
	traceUs := float64(tracePs) / 1e6
	if d := traceUs - float64(metricUs); d < 0 || d >= float64(calls) {
		t.Errorf("the trace says %.1f us of service over %d calls, runtime_latency %d us: they differ by %.1f us", traceUs, calls, metricUs, d)
	}
	if traceUs < float64(calls)*2000 {
		t.Errorf("the trace says %.1f us over %d calls of at least 2 ms", traceUs, calls)
	}
}
