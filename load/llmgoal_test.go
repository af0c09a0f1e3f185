package load

import (
	"testing"
	"time"
)

func TestLLMGoalMet(t *testing.T) {
	ms := time.Millisecond
	req := func(f LLMFailure, ttft time.Duration, gaps ...time.Duration) *LLMRequest {
		r := &LLMRequest{Failure: f, TTFT: ttft, Gaps: gaps, Chunks: len(gaps) + 1, OutputTokens: int64(len(gaps) + 1), E2E: ttft}
		for _, g := range gaps {
			r.E2E += g
		}
		if len(gaps) > 0 {
			r.TPOT = (r.E2E - r.TTFT) / time.Duration(len(gaps))
		}
		return r
	}
	for _, c := range []struct {
		name string
		goal LLMGoal
		r    *LLMRequest
		want bool
	}{
		{"all under", LLMGoal{TTFT: 100 * ms, ITLMax: 20 * ms, TPOT: 15 * ms, E2E: time.Second}, req(LLMOK, 50*ms, 10*ms, 19*ms), true},
		{"ttft at the bound", LLMGoal{TTFT: 50 * ms}, req(LLMOK, 50*ms, 10*ms), false},
		{"one gap over the max", LLMGoal{ITLMax: 20 * ms}, req(LLMOK, 5*ms, 10*ms, 25*ms, 1*ms), false},
		{"the same gaps under a mean bound", LLMGoal{ITLMean: 20 * ms}, req(LLMOK, 5*ms, 10*ms, 25*ms, 1*ms), true},
		{"mean over", LLMGoal{ITLMean: 10 * ms}, req(LLMOK, 5*ms, 12*ms, 12*ms), false},
		{"tpot over", LLMGoal{TPOT: 10 * ms}, req(LLMOK, 5*ms, 12*ms, 12*ms), false},
		{"e2e over", LLMGoal{E2E: 20 * ms}, req(LLMOK, 5*ms, 12*ms, 12*ms), false},
		{"one token, no gaps", LLMGoal{ITLMax: ms, ITLMean: ms, TTFT: 10 * ms}, req(LLMOK, 5*ms), true},
		{"malformed but complete", LLMGoal{TTFT: 10 * ms}, req(LLMMalformed, 5*ms, ms), true},
		{"closed mid-stream", LLMGoal{TTFT: 10 * ms}, req(LLMClosedMidStream, 5*ms, ms), false},
		{"no output", LLMGoal{E2E: time.Second}, &LLMRequest{Failure: LLMOK}, false},
	} {
		if got := c.goal.Met(c.r); got != c.want {
			t.Errorf("%s: Met %v, want %v", c.name, got, c.want)
		}
	}
}

// TestLLMRecorderCountsGoodput checks that the recorder counts the steady
// requests that met its goal, by window, and not the warmup ones, and that
// Merge adds the counts.
func TestLLMRecorderCountsGoodput(t *testing.T) {
	rec := NewLLMRecorder()
	rec.SetGoal(LLMGoal{TTFT: 10 * time.Millisecond})
	good := &LLMRequest{Failure: LLMOK, Chunks: 1, TTFT: 5 * time.Millisecond, E2E: 5 * time.Millisecond}
	slow := &LLMRequest{Failure: LLMOK, Chunks: 1, TTFT: 15 * time.Millisecond, E2E: 15 * time.Millisecond}
	rec.Record(Warmup, false, good)
	rec.Record(Steady, true, good)
	rec.Record(Steady, false, good)
	rec.Record(Steady, false, slow)
	other := NewLLMRecorder()
	other.SetGoal(LLMGoal{TTFT: 10 * time.Millisecond})
	other.Record(Steady, false, good)
	rec.Merge(other)
	snap := rec.Snapshot()
	if snap.Steady.Good != 3 || snap.Steady.Requests != 4 || snap.Window.Good != 1 || snap.Outside.Good != 2 || snap.Warmup.Good != 0 {
		t.Errorf("good: steady %d of %d, window %d, outside %d, warmup %d", snap.Steady.Good, snap.Steady.Requests, snap.Window.Good, snap.Outside.Good, snap.Warmup.Good)
	}
	none := NewLLMRecorder()
	none.Record(Steady, false, good)
	if g := none.Snapshot().Steady.Good; g != 0 {
		t.Errorf("without a goal: %d good", g)
	}
}
