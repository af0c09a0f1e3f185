package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// durationSettings are the flags whose config values are durations, in
// seconds (units.config_durations): --warmup only when it is a time, not
// {"requests": N}.
var durationSettings = map[string]bool{
	"duration": true, "warmup": true, "timeout": true, "grace": true,
	"profile-delay": true, "profile-duration": true, "profile-timeout": true,
}

// FormatDuration writes a length of time given in seconds with its unit,
// in the unit that reads best at its size: "250 ms", "10 s", "2 min 5 s",
// "2 h 27 min". Every duration on the pages, in the summaries and in the
// notes goes through it, so that none is shown as a bare number.
func FormatDuration(seconds float64) string {
	if math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		return "unknown"
	}
	sign := ""
	if seconds < 0 {
		sign, seconds = "-", -seconds
	}
	short := func(v float64) string { return strconv.FormatFloat(roundTo(v, 3), 'f', -1, 64) }
	switch {
	case seconds == 0:
		return "0 s"
	case seconds < 0.001:
		return sign + short(seconds*1e6) + " us"
	case seconds < 1:
		return sign + short(seconds*1e3) + " ms"
	case seconds < 60:
		return sign + short(seconds) + " s"
	case seconds < 3600:
		m, s := int(seconds/60), int(math.Round(seconds-60*math.Floor(seconds/60)))
		if s == 60 {
			m, s = m+1, 0
		}
		if s == 0 {
			return fmt.Sprintf("%s%d min", sign, m)
		}
		return fmt.Sprintf("%s%d min %d s", sign, m, s)
	}
	total := int(math.Round(seconds / 60))
	h, m := total/60, total%60
	if m == 0 {
		return fmt.Sprintf("%s%d h", sign, h)
	}
	return fmt.Sprintf("%s%d h %d min", sign, h, m)
}

// roundTo rounds v to digits significant digits.
func roundTo(v float64, digits int) float64 {
	if v == 0 {
		return 0
	}
	scale := math.Pow(10, float64(digits-1-int(math.Floor(math.Log10(math.Abs(v))))))
	return math.Round(v*scale) / scale
}

// FormatSettingOf formats the config value of setting key for people, as
// FormatSetting does, with a duration's unit: "--timeout 10" would say
// nothing of seconds.
func FormatSettingOf(key string, v any) string {
	if f, ok := v.(float64); ok && durationSettings[key] {
		return FormatDuration(f)
	}
	if s, ok := v.(string); ok && durationSettings[key] {
		// A version 2 value read as it was written ("10s"), or an
		// unparsable one: Go's own notation carries its unit.
		if d, err := time.ParseDuration(s); err == nil {
			return FormatDuration(d.Seconds())
		}
	}
	return FormatSetting(v)
}

// transportWords says over what a run sent its requests: "REST (epoll
// engine)", "gRPC", or for a merge of both "REST and gRPC (REST: epoll
// engine)".
func transportWords(r *Result) string {
	name := func(t string) string {
		switch t {
		case "rest":
			return "REST"
		case "grpc":
			return "gRPC"
		}
		return t
	}
	if r.Transport != mixed || len(r.MergedFrom) == 0 {
		s := name(r.Transport)
		if r.Client.Engine != "" && r.Client.Engine != mixed {
			s += " (" + r.Client.Engine + " engine)"
		}
		return s
	}
	seen := map[string]bool{}
	engines := map[string]bool{}
	var kinds []string
	for _, in := range r.MergedFrom {
		if !seen[in.Transport] {
			seen[in.Transport] = true
			kinds = append(kinds, name(in.Transport))
		}
		if in.Engine != "" {
			engines[in.Engine] = true
		}
	}
	sort.Strings(kinds)
	s := strings.Join(kinds, " and ")
	if len(engines) > 0 {
		var es []string
		for e := range engines {
			es = append(es, e)
		}
		sort.Strings(es)
		s += " (REST: " + strings.Join(es, " and ") + " engine)"
	}
	return s
}

// levelOf is a run's --rate (open loop) or --concurrency (closed loop) as
// a number, when it was one.
func levelOf(loop string, cfg map[string]any) (float64, bool) {
	key := "rate"
	if loop == "closed" {
		key = "concurrency"
	}
	switch v := cfg[key].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// loadWords says what load a run offered: "open loop at 300 req/s",
// "closed loop, concurrency 8"; for a merge, the inputs' levels added up
// and each one ("open loop at 180 req/s in all (100 + 80)").
func loadWords(r *Result) string {
	unit := func(v float64) string {
		if r.Loop == "open" {
			return FormatSetting(v) + " req/s"
		}
		return "concurrency " + FormatSetting(v)
	}
	lead := "open loop at "
	if r.Loop == "closed" {
		lead = "closed loop, "
	}
	if len(r.MergedFrom) > 0 {
		var total float64
		var parts []string
		for _, in := range r.MergedFrom {
			v, ok := levelOf(r.Loop, in.Config)
			if !ok {
				return r.Loop + " loop (the inputs' levels are in the table of inputs)"
			}
			total += v
			parts = append(parts, FormatSetting(v))
		}
		return lead + unit(total) + " in all (" + strings.Join(parts, " + ") + ")"
	}
	if v, ok := levelOf(r.Loop, r.Config); ok {
		return lead + unit(v)
	}
	return r.Loop + " loop"
}
