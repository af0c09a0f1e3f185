package load

import (
	"testing"
	"time"
)

// Each timed stream's output tokens/s is its output over its end-to-end
// latency, kept in thousandths; a stream that failed before any output,
// or whose stream did not complete, is not in it.
func TestOutputRateIsEachStreamsOutputOverItsEndToEnd(t *testing.T) {
	st := NewLLMStats()
	st.Add(&LLMRequest{Failure: LLMOK, Chunks: 10, OutputTokens: 10, E2E: 2 * time.Second, TTFT: time.Second})
	st.Add(&LLMRequest{Failure: LLMOK, Chunks: 4, OutputTokens: 40, E2E: 500 * time.Millisecond, TTFT: 100 * time.Millisecond})
	st.Add(&LLMRequest{Failure: LLMClosedMidStream, Chunks: 3, OutputTokens: 3, E2E: time.Second})
	if n := st.OutputRate.TotalCount(); n != 2 {
		t.Fatalf("%d rates recorded, want the 2 timed streams", n)
	}
	if lo, hi := st.OutputRate.Min(), st.OutputRate.Max(); !st.OutputRate.ValuesAreEquivalent(lo, 5000) || !st.OutputRate.ValuesAreEquivalent(hi, 80000) {
		t.Errorf("rates %d..%d (thousandths of tokens/s), want 5000 (10 tokens in 2 s) and 80000 (40 in 0.5 s)", lo, hi)
	}
	c := st.Clone()
	st.Merge(c)
	if st.OutputRate.TotalCount() != 4 || c.OutputRate.TotalCount() != 2 {
		t.Errorf("merge: %d rates, clone %d", st.OutputRate.TotalCount(), c.OutputRate.TotalCount())
	}
	st.reset()
	if st.OutputRate == nil || st.OutputRate.TotalCount() != 0 {
		t.Errorf("reset kept %v rates", st.OutputRate)
	}
}
