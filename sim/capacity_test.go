package sim

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOpenAICapacityStretchesTheGapsBeyondIt sends three overlapping
// streams to a model that decodes one at full speed: the later arrivals'
// gaps are planned 2 or 3 times as long, and a stream sent once they all
// ended is back at the configured gap (the slots were given back).
func TestOpenAICapacityStretchesTheGapsBeyondIt(t *testing.T) {
	const gap = 2 * time.Millisecond
	// The long TTFT keeps the three streams in flight together.
	s := startLLM(t, LLM{TTFT: 500 * time.Millisecond, TokenDelay: gap, OutputTokens: 3, Capacity: 1})
	body := `{"model": "tiny", "prompt": "hi", "stream": true}`
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := readSSE(t, context.Background(), s, "/v1/completions", body); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs := streamsWhenKept(t, s, 3)
	var stretches []string
	longest := time.Duration(0)
	for _, r := range recs {
		for _, g := range r.Planned {
			longest = max(longest, g)
		}
		stretches = append(stretches, r.Planned[0].String())
	}
	if longest < 2*gap || longest > 3*gap {
		t.Errorf("longest planned gap %v with 3 streams over a capacity of 1, want 2 to 3 times %v (%s)", longest, gap, strings.Join(stretches, " "))
	}
	if _, _, err := readSSE(t, context.Background(), s, "/v1/completions", body); err != nil {
		t.Fatal(err)
	}
	last := streamsWhenKept(t, s, 4)[3]
	for _, g := range last.Planned {
		if g != gap {
			t.Errorf("a stream alone after the others ended: gaps %v, want %v", last.Planned, gap)
			break
		}
	}
}

func TestOpenAICapacityOutOfRangeIsRefused(t *testing.T) {
	for _, c := range []int{-1, maxLLMCapacity + 1} {
		l := LLM{Capacity: c}
		l.withDefaults()
		if err := l.check(); err == nil || !strings.Contains(err.Error(), "sim.LLM.Capacity") {
			t.Errorf("Capacity %d: %v", c, err)
		}
	}
}
