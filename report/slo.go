package report

import (
	"fmt"
	"strconv"
	"strings"
)

// SLO is a latency and error objective: "p99<50ms,errors<0.1%".
type SLO struct {
	Latency map[string]float64 // metric (p50, p90, p95, p99, p999, max, mean) -> ms
	ErrPct  float64            // errors as % of requests; -1 when not set
	// LLM holds the terms on an OpenAI-compatible target's stream figures,
	// "ttft_p99" -> ms (report/llmslo.go); empty for other objectives.
	LLM map[string]float64
}

// ParseSLO reads an objective, "p99<50ms,errors<0.1%".
func ParseSLO(spec string) (SLO, error) {
	slo := SLO{Latency: map[string]float64{}, ErrPct: -1}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		name, val, ok := strings.Cut(part, "<")
		if !ok {
			return slo, fmt.Errorf("report.ParseSLO %q: want METRIC<LIMIT, e.g. p99<50ms or errors<0.1%%", part)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "p99.9" {
			name = "p999"
		}
		if m, ok := strings.CutSuffix(name, "_p99.9"); ok {
			name = m + "_p999"
		}
		switch {
		case name == "errors":
			v, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
			if err != nil || !strings.HasSuffix(val, "%") || v < 0 {
				return slo, fmt.Errorf("report.ParseSLO %q: errors take a percentage, e.g. errors<0.1%%", part)
			}
			slo.ErrPct = v
		case name == "p50" || name == "p90" || name == "p95" || name == "p99" || name == "p999" || name == "max" || name == "mean":
			ms, err := parseMs(val)
			if err != nil {
				return slo, fmt.Errorf("report.ParseSLO %q: %v", part, err)
			}
			slo.Latency[name] = ms
		case isLLMTerm(name):
			ms, err := parseMs(val)
			if err != nil {
				return slo, fmt.Errorf("report.ParseSLO %q: %v", part, err)
			}
			if slo.LLM == nil {
				slo.LLM = map[string]float64{}
			}
			slo.LLM[name] = ms
		default:
			return slo, fmt.Errorf("report.ParseSLO %q: unknown metric %q (p50, p90, p95, p99, p999, max, mean, errors; for LLM targets ttft_, itl_, tpot_ or e2e_ with one of those statistics, e.g. ttft_p99)", part, name)
		}
	}
	return slo, nil
}

func parseMs(v string) (float64, error) {
	v = strings.TrimSpace(v)
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"ms", 1}, {"us", 0.001}, {"s", 1000}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			if err != nil || f <= 0 {
				return 0, fmt.Errorf("%q is not a positive duration", v)
			}
			return f * u.ms, nil
		}
	}
	return 0, fmt.Errorf("%q needs a unit: ms, us or s", v)
}

// Broken returns why r breaks the SLO (nothing when it passes).
func (s SLO) Broken(r *Result) []string {
	var broken []string
	stats := map[string]float64{"p50": r.Latency.P50, "p90": r.Latency.P90, "p95": r.Latency.P95, "p99": r.Latency.P99,
		"p999": r.Latency.P999, "max": r.Latency.Max, "mean": r.Latency.Mean}
	for _, name := range []string{"p50", "p90", "p95", "p99", "p999", "max", "mean"} {
		if limit, ok := s.Latency[name]; ok && !(stats[name] < limit) {
			broken = append(broken, fmt.Sprintf("%s %.1fms >= %gms", name, stats[name], limit))
		}
	}
	broken = append(broken, s.brokenLLM(r)...)
	if Successes(r) == 0 && len(s.Latency) > 0 {
		broken = append(broken, "no request succeeded")
	}
	if s.ErrPct >= 0 && r.Requests > 0 {
		if pct := 100 * float64(sum(r.Errors)) / float64(r.Requests); !(pct < s.ErrPct) && !(s.ErrPct == 0 && pct == 0) {
			broken = append(broken, fmt.Sprintf("errors %.3f%% >= %g%%", pct, s.ErrPct))
		}
	}
	return broken
}
