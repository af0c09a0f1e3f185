package bench

import (
	"runtime"
	"strings"
	"testing"
)

// A range too long to run is refused from its size, before a step is
// made: 1:1e12:1 once ran out of memory building the list.
func TestParseStepsCountsBeforeItBuilds(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ParseSteps("--rate", "1:1e6:1")
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Fatalf("1:1e6:1: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Fatalf("refusing 1:1e6:1 allocated %d bytes: the steps were built before they were counted", grew)
	}
	for _, bad := range []string{"1:1e12:1", "1:inf:1", "1:+Inf:x2", "NaN:2:1", "1:NaN:1", "1:2:NaN", "1:2:inf", "1:2:0", "1:2:-1",
		"1:2:x1", "1:2:x0.5", "1:2:x-2", "1:2:xNaN", "1:2:xinf", "1:1e300:1e-300", "1e12:1.000001e12:1e-6"} {
		if s, err := ParseSteps("--rate", bad); err == nil {
			t.Errorf("ParseSteps(%q) accepted: %d steps", bad, len(s.Values))
		} else if !strings.HasPrefix(err.Error(), `--rate "`+bad+`"`) {
			t.Errorf("ParseSteps(%q): %v does not name the flag and value", bad, err)
		}
	}
	for spec, want := range map[string][]float64{
		"0.1:0.3:0.1": {0.1, 0.2, 0.30000000000000004},
		"5:5:1":       {5},
		"1:64:x2":     {1, 2, 4, 8, 16, 32, 64},
		"1:1000:1":    nil, // 1000 steps: the limit itself is allowed
	} {
		s, err := ParseSteps("--rate", spec)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if want == nil {
			if len(s.Values) != 1000 {
				t.Errorf("%s: %d steps", spec, len(s.Values))
			}
			continue
		}
		if len(s.Values) != len(want) {
			t.Errorf("%s: %v, want %v", spec, s.Values, want)
			continue
		}
		for i := range want {
			if d := s.Values[i] - want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("%s: %v, want %v", spec, s.Values, want)
				break
			}
		}
	}
}
