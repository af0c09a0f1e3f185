package load

import (
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

// simTimings are the median first-token time and the mean gap the
// simulator wrote over its kept streams, and the tokens it sent. The
// median, for the first requests of a run also wait for the server's
// accept and first read, which the simulator does not count.
func simTimings(t *testing.T, s *sim.Server, want int) (ttft, gap time.Duration, sent int64) {
	t.Helper()
	recs := s.LLMStreams()
	deadline := time.Now().Add(10 * time.Second)
	for len(recs) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		recs = s.LLMStreams()
	}
	if len(recs) != want {
		t.Fatalf("the simulator kept %d answers, want %d", len(recs), want)
	}
	var gaps time.Duration
	var nGaps int
	firsts := make([]time.Duration, 0, len(recs))
	for _, r := range recs {
		sent += int64(r.Sent)
		firsts = append(firsts, r.FirstToken)
		for _, g := range r.Gaps {
			gaps += g
			nGaps++
		}
	}
	slices.Sort(firsts)
	return firsts[(len(firsts)-1)/2], gaps / time.Duration(max(nGaps, 1)), sent
}

func usOf(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }

func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

const chatBody = `{"model":"tiny","messages":[{"role":"user","content":"say something nice"}],"stream":true,"stream_options":{"include_usage":true}}`

// TestLLMStreamTimingMatchesSimulator checks that the REST engines recover
// the TTFT and inter-token gaps the simulator wrote, within 5%, in open
// and closed loops, and the output tokens it sent.
func TestLLMStreamTimingMatchesSimulator(t *testing.T) {
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		for _, loop := range []string{"open", "closed"} {
			t.Run(fmt.Sprintf("%s/%s", engine, loop), func(t *testing.T) {
				const requests = 12
				// The engines time what the simulator did exactly on an idle
				// machine; a busy one adds scheduling delays that no server
				// record sees (up to a few hundred ms at load 10 on 2 cores),
				// in either direction for the mean gap. Those are transient
				// and a timing bug is not: the 5% bounds must hold in one of
				// three runs, and every count must hold in each.
				var misses []string
				for attempt := 1; attempt <= 3; attempt++ {
					st, lat, ttft, gap, sent := llmTimedRun(t, engine, loop, requests)
					misses = misses[:0]
					if got := usOf(float64(ValueAtPercentile(st.TTFT, 50))); !within(got, ttft, 0.05) {
						misses = append(misses, fmt.Sprintf("run %d: median TTFT %v, the simulator wrote the first token %v after arrival", attempt, got, ttft))
					}
					if got := usOf(st.ITL.Mean()); !within(got, gap, 0.05) {
						misses = append(misses, fmt.Sprintf("run %d: mean ITL %v, the simulator's gaps %v", attempt, got, gap))
					}
					checkLLMCounts(t, st, lat, sent, requests)
					if len(misses) == 0 {
						break
					}
					t.Log(strings.Join(misses, "; "))
				}
				for _, m := range misses {
					t.Error(m)
				}
			})
		}
	}
}

// llmTimedRun runs requests chat streams against a fresh simulator and
// returns what the engine recorded beside what the simulator wrote.
func llmTimedRun(t *testing.T, engine Engine, loop string, requests int) (st *LLMStats, lat Snapshot, ttft, gap time.Duration, sent int64) {
	t.Helper()
	s, err := sim.StartLoopback(sim.Config{Model: "tiny", LLM: sim.LLM{TTFT: 200 * time.Millisecond, TokenDelay: 30 * time.Millisecond,
		TokenJitter: 10 * time.Millisecond, OutputTokens: 8, KeepStreams: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Long times, so that 5% covers the usual scheduling delays.
	plan := Plan{Concurrency: 4, Requests: int64(requests)}
	if loop == "open" {
		plan = Plan{Rate: 40, Requests: int64(requests), MaxInflight: 50}
	}
	snap, lat := llmRun(t, s, engine, "/v1/chat/completions", []string{chatBody}, []bool{true}, plan, 10*time.Second)
	st = snap.Steady
	if st.Requests != int64(requests) || st.Failures[LLMOK] != int64(requests) || st.Timed != int64(requests) || lat.Steady.Requests != int64(requests) {
		t.Fatalf("requests %d, ok %d, timed %d, recorder %d; want %d each (failures %v)", st.Requests, st.Failures[LLMOK], st.Timed, lat.Steady.Requests, requests, st.Failures)
	}
	ttft, gap, sent = simTimings(t, s, requests)
	return st, lat, ttft, gap, sent
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
