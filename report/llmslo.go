package report

// The objective's terms on an OpenAI-compatible target's stream figures
// (ttft_p99<500ms, itl_p99<50ms, tpot_mean<20ms, e2e_p99<5s), judged on a
// run's histograms like the latency terms, and the goodput they define
// request by request.

import (
	"fmt"
	"slices"
	"strings"
)

// llmMetrics are the stream figures a term may name, in the order terms
// are judged and printed.
var llmMetrics = []string{"ttft", "itl", "tpot", "e2e"}

// sloStats are the statistics a term may take, as the latency terms do.
var sloStats = []string{"p50", "p90", "p95", "p99", "p999", "max", "mean"}

// isLLMTerm reports whether name is METRIC_STAT with an LLM metric.
func isLLMTerm(name string) bool {
	metric, stat, ok := strings.Cut(name, "_")
	return ok && slices.Contains(llmMetrics, metric) && slices.Contains(sloStats, stat)
}

// HasLLM reports whether the objective has terms on LLM stream figures,
// which only an OpenAI-compatible target measures.
func (s SLO) HasLLM() bool { return len(s.LLM) > 0 }

// LLMTermNames lists the LLM terms in a stable order (for errors that
// name one).
func (s SLO) LLMTermNames() []string {
	var names []string
	for _, m := range llmMetrics {
		for _, st := range sloStats {
			if _, ok := s.LLM[m+"_"+st]; ok {
				names = append(names, m+"_"+st)
			}
		}
	}
	return names
}

// statOf is the statistic named stat of st.
func statOf(st *Stats, stat string) float64 {
	switch stat {
	case "p50":
		return st.P50
	case "p90":
		return st.P90
	case "p95":
		return st.P95
	case "p99":
		return st.P99
	case "p999":
		return st.P999
	case "max":
		return st.Max
	}
	return st.Mean
}

// brokenLLM returns the LLM terms r breaks: a figure at or above its
// limit, a figure with no measurement (no stream completed), or a result
// without stream figures at all (not an LLM target).
func (s SLO) brokenLLM(r *Result) []string {
	if !s.HasLLM() {
		return nil
	}
	if r.TTFT == nil {
		return []string{fmt.Sprintf("%s: not an OpenAI-compatible (LLM) target, which has no stream figures", strings.Join(s.LLMTermNames(), ", "))}
	}
	figures := map[string]*Stats{"ttft": r.TTFT, "itl": r.ITL, "tpot": r.TPOT, "e2e": r.E2E}
	var broken []string
	for _, name := range s.LLMTermNames() {
		metric, stat, _ := strings.Cut(name, "_")
		limit := s.LLM[name]
		st := figures[metric]
		if st == nil || st.Count == 0 {
			broken = append(broken, fmt.Sprintf("%s: no request measured it", name))
			continue
		}
		if v := statOf(st, stat); !(v < limit) {
			broken = append(broken, fmt.Sprintf("%s %.1fms >= %gms", name, v, limit))
		}
	}
	return broken
}

// RequestBounds are the per-request limits in milliseconds the LLM
// terms set for goodput (0: no limit). A request meets them when its
// TTFT, its TPOT and its end-to-end latency are each under theirs, as
// vLLM's bench serve --goodput judges a request, and its own inter-token
// gaps are too: its largest gap under ITLMaxMs (itl terms but itl_mean)
// and its mean gap under ITLMeanMs (itl_mean). With several terms on one
// figure (ttft_p50 and ttft_p99) the tightest limit is the request's.
type RequestBounds struct {
	TTFTMs, ITLMaxMs, ITLMeanMs, TPOTMs, E2EMs float64
}

// RequestBounds returns the per-request limits of the LLM terms.
func (s SLO) RequestBounds() RequestBounds {
	var b RequestBounds
	tighten := func(dst *float64, v float64) {
		if *dst == 0 || v < *dst {
			*dst = v
		}
	}
	for name, ms := range s.LLM {
		metric, stat, _ := strings.Cut(name, "_")
		switch {
		case metric == "ttft":
			tighten(&b.TTFTMs, ms)
		case metric == "itl" && stat == "mean":
			tighten(&b.ITLMeanMs, ms)
		case metric == "itl":
			tighten(&b.ITLMaxMs, ms)
		case metric == "tpot":
			tighten(&b.TPOTMs, ms)
		case metric == "e2e":
			tighten(&b.E2EMs, ms)
		}
	}
	return b
}

// Goodput is how many of a run's steady requests individually met the
// objective's LLM terms (RequestBounds): their number, their rate over the
// steady phase, their share of the steady requests (failed ones
// included), and the objective as given.
type Goodput struct {
	Requests int64   `json:"requests"`
	Rate     float64 `json:"rate"`  // per second
	Share    float64 `json:"share"` // 0..1
	SLO      string  `json:"slo"`
}
