package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeTransport answers after a fixed delay and counts what it was sent.
type fakeTransport struct {
	delay time.Duration
	sent  atomic.Int64
	mu    sync.Mutex
	seen  map[int]int
}

func (f *fakeTransport) NewSender() Sender { return fakeSender{f} }
func (f *fakeTransport) Close()            {}

type fakeSender struct{ f *fakeTransport }

func (s fakeSender) Send(payload int) Outcome {
	s.f.sent.Add(1)
	s.f.mu.Lock()
	if s.f.seen == nil {
		s.f.seen = map[int]int{}
	}
	s.f.seen[payload]++
	s.f.mu.Unlock()
	time.Sleep(s.f.delay)
	return Outcome{Class: OK, Code: 200}
}

func counter(n int) Picker {
	var i atomic.Int64
	return PickerFunc(func() int { return int(i.Add(1)-1) % n })
}

func TestOpenLoopSendsExactRequestCountsPerPhase(t *testing.T) {
	tr := &fakeTransport{delay: time.Millisecond}
	rec := NewRecorder()
	plan := Plan{Rate: 2000, WarmupRequests: 50, Requests: 300, MaxInflight: 100}
	timing, err := Run(context.Background(), plan, tr, counter(3), rec)
	if err != nil {
		t.Fatal(err)
	}
	snap := rec.Snapshot(true)
	if snap.Warmup.Requests != 50 || snap.Steady.Requests != 300 || tr.sent.Load() != 350 || timing.Dispatched != 350 {
		t.Fatalf("warmup %d steady %d sent %d dispatched %d", snap.Warmup.Requests, snap.Steady.Requests, tr.sent.Load(), timing.Dispatched)
	}
	if tr.seen[0] != 117 || tr.seen[1] != 117 || tr.seen[2] != 116 {
		t.Fatalf("payload rotation: %v", tr.seen)
	}
	// Open loop: steady requests start at their intended times, 0.5 ms apart.
	if got := snap.Steady.FirstAt; got != 25*time.Millisecond {
		t.Fatalf("first steady intended send at %v, want 25ms", got)
	}
}

func TestClosedLoopKeepsConcurrencyAndStopsAtCount(t *testing.T) {
	tr := &fakeTransport{delay: 2 * time.Millisecond}
	rec := NewRecorder()
	timing, err := Run(context.Background(), Plan{Concurrency: 4, Requests: 200}, tr, counter(1), rec)
	if err != nil {
		t.Fatal(err)
	}
	if n := rec.Snapshot(true).Steady.Requests; n != 200 {
		t.Fatalf("steady requests %d", n)
	}
	if timing.PeakInflight != 4 {
		t.Fatalf("peak in flight %d, want 4", timing.PeakInflight)
	}
}

func TestOpenLoopReportsStallLatencyFromIntendedStart(t *testing.T) {
	// The transport blocks every request for 200 ms and the pool allows only
	// one request in flight: a closed-loop view would see 200 ms each, but
	// the schedule (one every 10 ms) says request i waited i*190 ms more.
	tr := &fakeTransport{delay: 200 * time.Millisecond}
	rec := NewRecorder()
	timing, err := Run(context.Background(), Plan{Rate: 100, Requests: 5, MaxInflight: 1}, tr, counter(1), rec)
	if err != nil {
		t.Fatal(err)
	}
	h := rec.Snapshot(true).Steady.Histogram
	if h.Max() < 950_000 {
		t.Fatalf("max latency %d us, want about 5*200ms - 4*10ms = 960ms", h.Max())
	}
	if timing.Saturated == 0 {
		t.Fatal("the run did not report that it waited for --max-inflight")
	}
}

func TestInterruptedRunStopsWaitingAfterGrace(t *testing.T) {
	tr := &fakeTransport{delay: 3 * time.Second}
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	timing, err := Run(ctx, Plan{Concurrency: 2, Duration: time.Minute, Grace: 200 * time.Millisecond}, tr, counter(1), rec)
	if err != nil {
		t.Fatal(err)
	}
	if !timing.Interrupted || timing.Unfinished != 2 {
		t.Fatalf("interrupted %v unfinished %d", timing.Interrupted, timing.Unfinished)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("waited %v for requests in flight, grace was 200ms", waited)
	}
}

func TestHoldKeepsSteadyLoadRunningPastDuration(t *testing.T) {
	tr := &fakeTransport{}
	rec := NewRecorder()
	hold := make(chan struct{})
	time.AfterFunc(400*time.Millisecond, func() { close(hold) })
	if _, err := Run(context.Background(), Plan{Rate: 500, Duration: 100 * time.Millisecond, MaxInflight: 10, Hold: hold}, tr, counter(1), rec); err != nil {
		t.Fatal(err)
	}
	if n := rec.Snapshot(true).Steady.Requests; n < 150 {
		t.Fatalf("steady requests %d: the load stopped before the hold was released", n)
	}
}

func TestPlanCheckRejectsContradictions(t *testing.T) {
	for _, p := range []Plan{
		{},
		{Rate: 10, Concurrency: 2, Duration: time.Second, MaxInflight: 1},
		{Rate: 10, MaxInflight: 1},
		{Rate: -1, Duration: time.Second},
		{Rate: 10, Duration: time.Second},
	} {
		if p.Check() == nil {
			t.Errorf("Check(%+v) accepted", p)
		}
	}
}

func TestRecorderTagsWindowAndFillsSilentSeconds(t *testing.T) {
	rec := NewRecorder()
	rec.Record(Sample{Phase: Warmup, Start: 0, Done: time.Millisecond, Outcome: Outcome{Class: Timeout, Err: errors.New("deadline")}})
	rec.Record(Sample{Phase: Steady, Start: 0, Done: 5 * time.Millisecond, Outcome: Outcome{Class: OK}})
	rec.Record(Sample{Phase: Steady, InWindow: true, Start: 10 * time.Millisecond, Done: 30 * time.Millisecond, Outcome: Outcome{Class: OK}})
	rec.Record(Sample{Phase: Steady, Start: 2 * time.Second, Done: 3100 * time.Millisecond, Outcome: Outcome{Class: HTTPStatus, Code: 503}})
	s := rec.Snapshot(true)
	if s.Window.Requests != 1 || s.Outside.Requests != 2 || s.Steady.Requests != 3 || s.Warmup.Requests != 1 {
		t.Fatalf("window %d outside %d steady %d warmup %d", s.Window.Requests, s.Outside.Requests, s.Steady.Requests, s.Warmup.Requests)
	}
	if got := s.Window.Histogram.Max(); got < 19_900 || got > 20_100 {
		t.Fatalf("window latency %d us, want 20000", got)
	}
	if s.Steady.Errors[ErrorKey{HTTPStatus, 503}] != 1 || s.Steady.Errors[ErrorKey{Class: Timeout}] != 0 {
		t.Fatalf("steady errors %v", s.Steady.Errors)
	}
	if s.FirstErrors[ErrorKey{Class: Timeout}] != "deadline" {
		t.Fatalf("first errors %v", s.FirstErrors)
	}
	// Second 0 has steady requests, so its warm-up one is in the warm-up's
	// figures only: the steady seconds add up to the steady phase.
	if len(s.Series) != 4 || s.Series[1].Requests != 0 || s.Series[2].Requests != 0 || s.Series[3].Errors != 1 || s.Series[0].Requests != 2 {
		t.Fatalf("series %+v", s.Series)
	}
	if s.Series[0].MaxUs > 20_100 {
		t.Fatalf("second 0's max %d us holds the warm-up's request", s.Series[0].MaxUs)
	}
}

func TestClassifyNetError(t *testing.T) {
	cases := map[error]ErrorClass{
		syscall.ECONNREFUSED: ConnRefused,
		syscall.ECONNRESET:   ConnReset,
		fasthttp.ErrTimeout:  Timeout,
		&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}: ConnRefused,
		fasthttp.ErrConnectionClosed:                        ConnClosed,
		errors.New("tls: bad certificate"):                  OtherFailure,
	}
	for err, want := range cases {
		if got := ClassifyNetError(err); got != want {
			t.Errorf("ClassifyNetError(%v) = %v, want %v", err, got, want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	h, err := ParseHeader("Authorization:  Bearer x:y ")
	if err != nil || h.Key != "Authorization" || h.Value != "Bearer x:y" {
		t.Fatalf("%+v %v", h, err)
	}
	for _, bad := range []string{"novalue", ": v", "two words: v"} {
		if _, err := ParseHeader(bad); err == nil {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}

func TestValueAtPercentileRoundsTheRankUpLikeJavaAndJS(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 800; v++ {
		h.RecordValue(v)
	}
	for p, want := range map[float64]int64{0: 1, 50: 400, 99: 792, 99.9: 800, 100: 800, 12.5: 100} {
		if got := ValueAtPercentile(h, p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
	if ValueAtPercentile(NewHistogram(), 99) != 0 {
		t.Error("empty histogram")
	}
}

func TestLoopCountFollowsTheLoadNotTheCores(t *testing.T) {
	cases := []struct {
		plan     Plan
		maxLoops int
		want     int
	}{
		{Plan{Concurrency: 16}, 63, 1},
		{Plan{Concurrency: 33}, 63, 2},
		{Plan{Concurrency: 1000}, 63, 32},
		{Plan{Concurrency: 5000}, 7, 7},
		{Plan{Rate: 200, MaxInflight: 1000}, 63, 1},
		{Plan{Rate: 60000, MaxInflight: 1000}, 63, 3},
		{Plan{Rate: 1e6, MaxInflight: 2}, 63, 2},
		{Plan{Concurrency: 4}, 1, 1},
	}
	for _, c := range cases {
		if got := loopCount(c.plan, c.maxLoops); got != c.want {
			t.Errorf("loopCount(%+v, %d) = %d, want %d", c.plan, c.maxLoops, got, c.want)
		}
	}
}

func TestScheduledPhasesDependOnTheRequestNumberNotTheOrder(t *testing.T) {
	interval := float64(4 * time.Millisecond)
	plan := Plan{Rate: 250, WarmupRequests: 2, WarmupDuration: 10 * time.Millisecond, Requests: 5, MaxInflight: 10}
	s := newOpenSchedule(&plan, func() {}) // warm-up: requests 0-2 (the one due at 8 ms is still inside 10 ms)
	got := map[int64]string{}
	for _, seq := range []int64{1, 0, 4, 2, 9, 3, 6, 5, 8, 7} {
		if at := s.at(seq); at != time.Duration(float64(seq)*interval) {
			t.Fatalf("request %d is due at %v, want %v", seq, at, time.Duration(float64(seq)*interval))
		}
		phase, more := s.phase(seq)
		got[seq] = fmt.Sprint(phase, more)
	}
	want := map[int64]string{0: "warmup true", 1: "warmup true", 2: "warmup true", 3: "steady true", 4: "steady true",
		5: "steady true", 6: "steady true", 7: "steady true", 8: "steady false", 9: "steady false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("phases by request number:\n got %v\nwant %v", got, want)
	}
	if s.steadyStart != 12*time.Millisecond {
		t.Fatalf("steady phase starts at %v, want 12ms", s.steadyStart)
	}
}

// A second with only warm-up requests shows them; once a second has a
// steady request it shows the steady ones alone.
func TestASecondOfTheWarmupShowsTheWarmup(t *testing.T) {
	rec := NewRecorder()
	rec.Record(Sample{Phase: Warmup, Start: 0, Done: 500 * time.Millisecond, Outcome: Outcome{Class: OK}})
	rec.Record(Sample{Phase: Warmup, Start: 900 * time.Millisecond, Done: 1060 * time.Millisecond, Outcome: Outcome{Class: OK}})
	rec.Record(Sample{Phase: Steady, Start: 1000 * time.Millisecond, Done: 1010 * time.Millisecond, Outcome: Outcome{Class: OK}})
	s := rec.Snapshot(true)
	if len(s.Series) != 2 || s.Series[0].Requests != 1 || s.Series[0].MaxUs < 499_000 || s.Series[1].Requests != 1 || s.Series[1].MaxUs > 10_100 {
		t.Fatalf("series %+v", s.Series)
	}
}
