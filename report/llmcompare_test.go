package report

import (
	"slices"
	"strings"
	"testing"
)

// withStreams gives r stream figures: n TTFTs up to ttftMs, ITLs up to
// itlMs, and tokPerS output tokens/s.
func withStreams(t *testing.T, r *Result, n int, ttftMs, itlMs, tokPerS float64) *Result {
	t.Helper()
	spread := func(maxMs float64) *Stats {
		h := newHistogram()
		for i := 1; i <= n; i++ {
			h.RecordValue(int64(maxMs * 1000 * float64(i) / float64(n)))
		}
		s := StatsOf(h)
		return &s
	}
	r.TTFT, r.ITL, r.TPOT, r.E2E = spread(ttftMs), spread(itlMs), spread(itlMs), spread(ttftMs+10*itlMs)
	r.OutputTokensPerS = &tokPerS
	return r
}

func TestCompareLimitsTheStreamFigures(t *testing.T) {
	limits, err := ParseLimits("ttft_p99=10%,itl_p99=+2ms,tpot_mean=10%,e2e_p99=20%,output_tokens_per_s=-5%")
	if err != nil {
		t.Fatal(err)
	}
	base := withStreams(t, crafted(t, 10000, 100, 1000, 0), 10000, 200, 20, 5000)
	same := Compare(base, withStreams(t, crafted(t, 10000, 100, 1000, 0), 10000, 200, 20, 5000), limits)
	if len(same.Broken) != 0 {
		t.Fatalf("identical runs broke %v", same.Broken)
	}
	var rows []string
	for _, r := range same.Rows {
		rows = append(rows, r.Metric)
	}
	for _, want := range []string{"ttft_p99", "itl_p99", "tpot_mean", "e2e_p99", "output_tokens_per_s"} {
		if !slices.Contains(rows, want) {
			t.Errorf("no %s row: %v", want, rows)
		}
	}
	// TTFT +25%, ITL +5 ms (TPOT +25%), e2e +25%, tokens/s -10%.
	worse := Compare(base, withStreams(t, crafted(t, 10000, 100, 1000, 0), 10000, 250, 25, 4500), limits)
	if got := strings.Join(worse.Broken, ","); got != "ttft_p99,itl_p99,tpot_mean,e2e_p99,output_tokens_per_s" {
		t.Fatalf("broken %v", got)
	}
	var b strings.Builder
	worse.Write(&b)
	if !strings.Contains(b.String(), "ttft_p99") || !strings.Contains(b.String(), "output_tokens_per_s") {
		t.Errorf("table:\n%s", b.String())
	}

	// A run without stream figures has no such rows; limiting them fails.
	plain := Compare(crafted(t, 100, 10, 100, 0), crafted(t, 100, 10, 100, 0), nil)
	for _, r := range plain.Rows {
		if strings.HasPrefix(r.Metric, "ttft") || r.Metric == "output_tokens_per_s" {
			t.Errorf("a plain run has row %s", r.Metric)
		}
	}
	lost := Compare(base, crafted(t, 10000, 100, 1000, 0), limits)
	if len(lost.Broken) != 5 || !strings.Contains(strings.Join(lost.Notes, "\n"), "no stream figures") {
		t.Errorf("limits on figures the new run lacks: broken %v, notes %v", lost.Broken, lost.Notes)
	}
	if l, err := ParseLimits("output_tokens_per_s=100"); err != nil || !strings.Contains(l[0].String(), "tok/s") {
		t.Errorf("absolute tokens/s limit: %v %v", l, err)
	}
}

// compare prints output tokens/s with one decimal like req/s (it printed
// 612.3138322738515), and a row the base run lacks has no percentage
// (it printed +0.0%).
func TestCompareFormatsTokensPerSAndNoChangeForAMissingBase(t *testing.T) {
	base := withStreams(t, crafted(t, 10000, 100, 1000, 0), 10000, 200, 20, 612.3138322738515)
	next := withStreams(t, crafted(t, 10000, 100, 1000, 0), 10000, 200, 20, 612.2466312262729)
	var out strings.Builder
	Compare(base, next, nil).Write(&out)
	var row string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "output_tokens_per_s") {
			row = line
		}
	}
	if f := strings.Fields(row); len(f) < 5 || f[1] != "612.3" || f[2] != "612.2" || f[3] != "-0.1" || f[4] != "-0.0%" {
		t.Errorf("output_tokens_per_s row %q: want 612.3 612.2 -0.1 -0.0%%", row)
	}
	out.Reset()
	Compare(crafted(t, 10000, 100, 1000, 0), next, nil).Write(&out)
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "ttft_p99") && strings.Contains(line, "%") {
			t.Errorf("a stream figure the base lacks has a change: %q", line)
		}
	}
}
