package load

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// llmRun sends the plan's requests of body to s's endpoint path on engine
// and returns the LLM and latency recordings.
func llmRun(t *testing.T, s *sim.Server, engine Engine, path string, bodies []string, streamed []bool, plan Plan, timeout time.Duration) (LLMSnapshot, Snapshot) {
	t.Helper()
	if engine == EngineEpoll && !eventLoopsAvailable {
		t.Skip("no epoll engine here")
	}
	llm := NewLLMRecorder()
	bs := make([][]byte, len(bodies))
	for i, b := range bodies {
		bs[i] = []byte(b)
	}
	tr, err := NewREST(RESTConfig{URL: "http://" + s.RESTAddr() + path, Bodies: bs, Timeout: timeout, Engine: engine,
		LLM: &LLMTarget{Recorder: llm, Streamed: streamed}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rec := NewRecorder()
	var n atomic.Int64
	pick := PickerFunc(func() int { return int(n.Add(1)-1) % len(bodies) })
	if _, err := Run(context.Background(), plan, tr, pick, rec); err != nil {
		t.Fatal(err)
	}
	return llm.Snapshot(), rec.Snapshot(true)
}

func usOf(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }

func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

const chatBody = `{"model":"tiny","messages":[{"role":"user","content":"say something nice"}],"stream":true,"stream_options":{"include_usage":true}}`

// TestLLMStreamTimingMatchesSimulator checks that the REST engines recover
// the TTFT and inter-token gaps the simulator wrote, within 5%, in open
// and closed loops, and the output tokens it sent, in every run.
//
// The bounds are on what the simulator recorded it did, request by
// request, not on its settings: a busy machine makes the simulator's own
// timers late (the recorded figures then differ from the settings, which
// is logged, not failed) and makes the client send late (an open loop's
// TTFT counts from the intended send time by design). Both are in the
// recording: each request's first-token write, on the simulator's clock,
// less the time the client meant to send it (the same process, the same
// monotonic clock). What is left is the time from the simulator's write to
// the client's read: a fraction of a millisecond idle, at the median up to
// about 25 ms for a whole run at load 11 on 2 cores beside two CPU hogs,
// inside 5% of a 500 ms TTFT. A fault smaller than 5% (a millisecond on
// each TTFT) is not told apart from such a machine's delays.
func TestLLMStreamTimingMatchesSimulator(t *testing.T) {
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		for _, loop := range []string{"open", "closed"} {
			t.Run(fmt.Sprintf("%s/%s", engine, loop), func(t *testing.T) {
				const requests = 12
				r := llmTimedRun(t, engine, loop, requests)
				st := r.client
				if got, want := usOf(float64(ValueAtPercentile(st.TTFT, 50))+llmTimingFault.ttftUs), r.ttft.median(); !within(got, want, 0.05) {
					t.Errorf("median TTFT %v; the simulator wrote the first tokens %v after they were due to be sent (median)", got, want)
				}
				if got, want := usOf(st.ITL.Mean()+llmTimingFault.gapUs), r.gaps.mean(); !within(got, want, 0.05) {
					t.Errorf("mean ITL %v, the simulator's gaps %v", got, want)
				}
				checkLLMCounts(t, st, r.lat, r.sent, requests)
				if t.Failed() {
					t.Log("on the run's clock:\n" + strings.Join(r.pairs, "\n"))
				}
				// The recording against the settings: the simulator's
				// lateness on this machine, reported.
				if got := r.firstFromArrival.median(); !within(got, llmTimedTTFT, 0.05) {
					t.Logf("the simulator was late: its median first token went out %v after arrival, set to %v", got, llmTimedTTFT)
				}
				if got := r.gaps.mean(); !within(got, llmTimedGap, 0.05) {
					t.Logf("the simulator was late: its mean gap was %v, set to %v", got, llmTimedGap)
				}
			})
		}
	}
}

// llmTimingFault is added to the client's figures before they are checked:
// zero, but a fault planted here (a millisecond on every TTFT, say) shows
// whether the bounds can see it.
var llmTimingFault struct{ ttftUs, gapUs float64 }

// The simulated model of the timing test: long times, so that 5% is far
// above the write-to-read delays of a busy machine; a short gap, so that a
// millisecond added to each is more than 5%.
const (
	llmTimedTTFT   = 500 * time.Millisecond
	llmTimedGap    = 15 * time.Millisecond
	llmTimedJitter = 5 * time.Millisecond
	llmTimedTokens = 24
)

// durations are figures of a run's requests.
type durations []time.Duration

func (d durations) median() time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func (d durations) mean() time.Duration {
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(max(len(d), 1))
}

// llmTimedResult is what the engine recorded beside what the simulator
// recorded.
type llmTimedResult struct {
	client *LLMStats
	lat    Snapshot
	// ttft: each request's first-token write on the simulator's clock
	// less the time the client meant to send it; firstFromArrival: the
	// simulator's own first-token time, from the request's arrival.
	ttft, firstFromArrival durations
	gaps                   durations // every gap between the simulator's token writes
	sent                   int64     // tokens the simulator wrote
	pairs                  []string  // each request's times, for a failure's log
}

// llmTimedRun runs requests chat streams against a fresh simulator and
// returns what the engine recorded beside what the simulator did.
func llmTimedRun(t *testing.T, engine Engine, loop string, requests int) llmTimedResult {
	t.Helper()
	if engine == EngineEpoll && !eventLoopsAvailable {
		t.Skip("no epoll engine here")
	}
	s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{TTFT: llmTimedTTFT, TokenDelay: llmTimedGap,
		TokenJitter: llmTimedJitter, OutputTokens: llmTimedTokens, KeepStreams: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := Plan{Concurrency: 4, Requests: int64(requests)}
	if loop == "open" {
		plan = Plan{Rate: 10, Requests: int64(requests), MaxInflight: 50}
	}
	llm := NewLLMRecorder()
	tr, err := NewREST(RESTConfig{URL: "http://" + s.RESTAddr() + "/v1/chat/completions", Bodies: [][]byte{[]byte(chatBody)},
		Timeout: 10 * time.Second, Engine: engine, LLM: &LLMTarget{Recorder: llm, Streamed: []bool{true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rec := NewRecorder()
	// Every request is a window sample: its start (intended in an open
	// loop) is kept, to pair with the simulator's record of it.
	rec.SetWindow(true)
	if _, err := Run(context.Background(), plan, tr, PickerFunc(func() int { return 0 }), rec); err != nil {
		t.Fatal(err)
	}
	r := llmTimedResult{client: llm.Snapshot().Steady, lat: rec.Snapshot(true)}
	st := r.client
	if st.Requests != int64(requests) || st.Failures[LLMOK] != int64(requests) || st.Timed != int64(requests) || r.lat.Steady.Requests != int64(requests) {
		t.Fatalf("requests %d, ok %d, timed %d, recorder %d; want %d each (failures %v)", st.Requests, st.Failures[LLMOK], st.Timed, r.lat.Steady.Requests, requests, st.Failures)
	}
	recs := streamsKept(t, s, requests)
	samples := rec.WindowSamples()
	if len(samples) != requests {
		t.Fatalf("%d window samples, want %d", len(samples), requests)
	}
	// The k-th request the client sent is the k-th the simulator saw
	// arrive. Requests due together (a closed loop's first round) may
	// swap with no effect, their due times being equal; at 10 a second a
	// client late enough to send two at once is rare.
	slices.SortFunc(samples, func(a, b Sample) int { return cmp.Compare(a.Sent, b.Sent) })
	slices.SortFunc(recs, func(a, b sim.LLMStream) int { return cmp.Compare(a.Arrived, b.Arrived) })
	for k, sr := range recs {
		firstWrite := s.Started().Add(sr.Arrived + sr.FirstToken)
		r.ttft = append(r.ttft, firstWrite.Sub(rec.Origin().Add(samples[k].Start)))
		r.firstFromArrival = append(r.firstFromArrival, sr.FirstToken)
		r.gaps = append(r.gaps, sr.Gaps...)
		r.sent += int64(sr.Sent)
		r.pairs = append(r.pairs, fmt.Sprintf("request %d: due %v, arrived %v, first token written %v after arrival", k,
			samples[k].Start, s.Started().Add(sr.Arrived).Sub(rec.Origin()), sr.FirstToken))
	}
	return r
}

// streamsKept waits (bounded) for the simulator's records of n answers: a
// client may read [DONE] a moment before the simulator's writer returns.
func streamsKept(t *testing.T, s *sim.Server, n int) []sim.LLMStream {
	t.Helper()
	recs := s.LLMStreams()
	deadline := time.Now().Add(10 * time.Second)
	for len(recs) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		recs = s.LLMStreams()
	}
	if len(recs) != n {
		t.Fatalf("the simulator kept %d answers, want %d", len(recs), n)
	}
	return recs
}

// checkLLMCounts checks what a timed run counted against what the
// simulator sent.
func checkLLMCounts(t *testing.T, st *LLMStats, lat Snapshot, sent int64, requests int) {
	t.Helper()
	if st.ITL.TotalCount() != sent-int64(requests) {
		t.Errorf("%d gaps recorded, want %d", st.ITL.TotalCount(), sent-int64(requests))
	}
	if st.OutputTokens != sent || st.OutputFromUsage != int64(requests) {
		t.Errorf("output tokens %d (%d from usage), the simulator sent %d", st.OutputTokens, st.OutputFromUsage, sent)
	}
	if st.InputTokens != 3*int64(requests) {
		t.Errorf("input tokens %d, want %d", st.InputTokens, 3*requests)
	}
	// latency_ms stays the end-to-end latency.
	if got, want := lat.Steady.Histogram.Mean(), st.E2E.Mean(); math.Abs(got-want) > 0.01*want {
		t.Errorf("latency mean %.0f us, e2e mean %.0f us", got, want)
	}
}

// TestLLMNonStreamedAnswerIsOneEvent checks that an answer without
// "stream" is timed as one response: TTFT is its end-to-end latency and
// its output is usage's.
func TestLLMNonStreamedAnswerIsOneEvent(t *testing.T) {
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		t.Run(string(engine), func(t *testing.T) {
			s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{TTFT: 20 * time.Millisecond, TokenDelay: 2 * time.Millisecond, OutputTokens: 7}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			body := `{"model":"tiny","prompt":"one two","max_tokens":5}`
			snap, _ := llmRun(t, s, engine, "/v1/completions", []string{body}, []bool{false}, Plan{Concurrency: 1, Requests: 3}, 10*time.Second)
			st := snap.Steady
			if st.Failures[LLMOK] != 3 || st.Timed != 3 {
				t.Fatalf("ok %d timed %d, want 3 (failures %v)", st.Failures[LLMOK], st.Timed, st.Failures)
			}
			if st.TTFT.Mean() != st.E2E.Mean() || st.ITL.TotalCount() != 0 {
				t.Errorf("TTFT mean %.0f, e2e mean %.0f, %d gaps: want TTFT = e2e and no gaps", st.TTFT.Mean(), st.E2E.Mean(), st.ITL.TotalCount())
			}
			if st.OutputTokens != 15 || st.InputTokens != 6 {
				t.Errorf("output %d input %d, want 15 and 6", st.OutputTokens, st.InputTokens)
			}
		})
	}
}

// TestLLMStreamFaultsCountedPerClass checks that stalls, closes mid-stream
// and malformed events are each counted in their class, in the run's
// errors and the LLM stats, and that no request is lost.
func TestLLMStreamFaultsCountedPerClass(t *testing.T) {
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		for _, loop := range []string{"open", "closed"} {
			t.Run(fmt.Sprintf("%s/%s", engine, loop), func(t *testing.T) {
				const requests = 30
				s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{TTFT: 5 * time.Millisecond, TokenDelay: 2 * time.Millisecond,
					OutputTokens: 8, KeepStreams: 100, Seed: 3,
					Faults: sim.StreamFaults{StallRate: 0.25, Stall: 30 * time.Second, CloseRate: 0.25, MalformedRate: 0.25, After: 3}}})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				plan := Plan{Concurrency: 6, Requests: requests}
				if loop == "open" {
					plan = Plan{Rate: 100, Requests: requests, MaxInflight: 50}
				}
				// The stall (30s) is far past the timeout, and the
				// timeout far past a busy machine's scheduling delays: a
				// stalled stream fails at the timeout after its last
				// token, and no other does.
				snap, lat := llmRun(t, s, engine, "/v1/chat/completions", []string{chatBody}, []bool{true}, plan, 2*time.Second)
				// The stalled answers are still waiting out their stall:
				// closing the server ends them, and their records.
				_ = s.Close()
				recs := s.LLMStreams()
				if len(recs) != requests {
					t.Fatalf("the simulator kept %d answers, want %d", len(recs), requests)
				}
				faults := map[string]int64{}
				for _, r := range recs {
					faults[r.Fault]++
				}
				st := snap.Steady
				want := map[LLMFailure]int64{LLMOK: faults[""], LLMStalled: faults["stall"], LLMClosedMidStream: faults["close"], LLMMalformed: faults["malformed"]}
				for f, n := range want {
					if st.Failures[f] != n {
						t.Errorf("%s: %d, the simulator played %d (all: %v, sim %v)", f, st.Failures[f], n, st.Failures, faults)
					}
					if f == LLMOK {
						continue
					}
					if got := lat.Steady.Errors[ErrorKey{Class: StreamFailure, Code: int(f)}]; got != n {
						t.Errorf("errors[%s] = %d, want %d (%v)", f, got, n, lat.Steady.Errors)
					}
				}
				if lat.Steady.Requests != requests || lat.Steady.Requests != lat.Steady.Requests-lat.Steady.ErrorTotal()+want[LLMStalled]+want[LLMClosedMidStream]+want[LLMMalformed] {
					t.Errorf("requests %d, errors %v: want %d = ok + each class", lat.Steady.Requests, lat.Steady.Errors, requests)
				}
				if st.MalformedEvents != faults["malformed"] {
					t.Errorf("%d malformed events, want %d", st.MalformedEvents, faults["malformed"])
				}
				// A malformed stream still reached [DONE]: timed.
				if st.Timed != want[LLMOK]+want[LLMMalformed] {
					t.Errorf("timed %d, want %d", st.Timed, want[LLMOK]+want[LLMMalformed])
				}
				for k, msg := range lat.FirstErrors {
					if k.Class == StreamFailure && !strings.Contains(msg, "chunks") && !strings.Contains(msg, "events") {
						t.Errorf("error sample of %s: %q", k, msg)
					}
				}
			})
		}
	}
}

// TestLLMLongStreamIsNotAStall checks that the timeout bounds the wait for
// each event, not the whole answer: a stream longer than the timeout
// whose gaps are shorter succeeds.
func TestLLMLongStreamIsNotAStall(t *testing.T) {
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		for _, loop := range []string{"open", "closed"} {
			t.Run(fmt.Sprintf("%s/%s", engine, loop), func(t *testing.T) {
				s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{TTFT: 100 * time.Millisecond, TokenDelay: 400 * time.Millisecond, OutputTokens: 4}})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				plan := Plan{Concurrency: 2, Requests: 2}
				if loop == "open" {
					plan = Plan{Rate: 20, Requests: 2, MaxInflight: 10}
				}
				snap, lat := llmRun(t, s, engine, "/v1/chat/completions", []string{chatBody}, []bool{true}, plan, time.Second)
				if st := snap.Steady; st.Failures[LLMOK] != 2 || lat.Steady.ErrorTotal() != 0 {
					t.Fatalf("failures %v, errors %v: a 1.3s stream with 400ms gaps failed a 1s timeout", st.Failures, lat.Steady.Errors)
				}
				// The answer took longer than the timeout: the check means
				// something.
				if e2e := usOf(snap.Steady.E2E.Mean()); e2e <= time.Second {
					t.Fatalf("e2e %v", e2e)
				}
			})
		}
	}
}

// TestLLMStreamAllocatesNothingPerRequest checks that a connection's
// stream state, once warm, times a whole streamed answer fed in pieces
// without allocating: the hot path costs no garbage per token.
func TestLLMStreamAllocatesNothingPerRequest(t *testing.T) {
	var body []byte
	for i := 0; i < 16; i++ {
		body = fmt.Appendf(body, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w%d\"}}]}\n\n", i)
	}
	body = append(body, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":16}}\n\ndata: [DONE]\n\n"...)
	rec := NewLLMRecorder()
	s := &llmStream{rec: rec}
	var out Outcome
	run := func() {
		s.begin(Steady, false, 0, true)
		for i := 0; i < len(body); i += 37 {
			s.arrived(time.Duration(i) * time.Microsecond)
			s.body(200, body[i:min(i+37, len(body))])
		}
		out = s.end(Outcome{Class: OK, Code: 200}, time.Millisecond)
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("%v allocations per streamed answer", allocs)
	}
	st := rec.Snapshot().Steady
	if out.Class != OK || st.Failures[LLMOK] != 102 || st.OutputTokens != 16*102 || st.ITL.TotalCount() != 15*102 {
		t.Errorf("outcome %v, failures %v, output %d, gaps %d", out.Key(), st.Failures, st.OutputTokens, st.ITL.TotalCount())
	}
}
