package servermetrics

import "fmt"

// Report is what one endpoint said over a run, ready for result.json.
type Report struct {
	URL           string   `json:"url"`
	Model         string   `json:"model,omitempty"`
	Scrapes       int      `json:"scrapes"`
	FailedScrapes int      `json:"failed_scrapes"`
	Run           *Window  `json:"run,omitempty"`       // first to last scrape
	Steady        *Window  `json:"steady,omitempty"`    // MarkSteadyStart to MarkSteadyEnd
	Profile       *Window  `json:"profile,omitempty"`   // MarkProfileOpen to MarkProfileClose
	Intervals     []Window `json:"intervals,omitempty"` // raw series: only those that changed
	Warnings      []string `json:"warnings,omitempty"`  // failed scrapes, missing marks
}

// Summarize cuts samples into windows: the whole run, the steady phase
// and the profile window (between their marks), and each interval
// between two successful scrapes in a row. A mark whose scrape failed
// moves its window's edge to the nearest successful scrape inside it,
// with a warning.
func Summarize(url, model string, samples []Sample) Report {
	r := Report{URL: url, Model: model}
	var ok []int // indexes of the successful samples
	for i := range samples {
		r.Scrapes++
		if samples[i].snap == nil {
			r.FailedScrapes++
			r.Warnings = append(r.Warnings, samples[i].Warning)
			continue
		}
		ok = append(ok, i)
	}
	if len(ok) == 0 {
		return r
	}
	snaps := func(from, to int) []*Snapshot { // inclusive sample indexes
		var out []*Snapshot
		for i := from; i <= to; i++ {
			out = append(out, samples[i].snap)
		}
		return out
	}
	run := Figures("run", Accumulate(snaps(ok[0], ok[len(ok)-1])))
	r.Run = &run
	r.Steady = r.between("steady", samples, MarkSteadyStart, MarkSteadyEnd, snaps)
	r.Profile = r.between("profile", samples, MarkProfileOpen, MarkProfileClose, snaps)
	gauges := map[string]float64{} // each gauge's last value listed
	for k := 1; k < len(ok); k++ {
		w := Figures("interval", Accumulate(snaps(ok[k-1], ok[k])))
		w.Raw = changed(w.Raw, gauges)
		r.Intervals = append(r.Intervals, w)
	}
	return r
}

func (r *Report) between(name string, samples []Sample, open, close string, snaps func(int, int) []*Snapshot) *Window {
	from, to := markIndex(samples, open), markIndex(samples, close)
	if from < 0 || to < 0 {
		if from >= 0 || to >= 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s window: only one of its marks %s and %s was set", name, open, close))
		}
		return nil
	}
	a, b := from, to
	for a <= b && samples[a].snap == nil {
		a++
	}
	for b >= a && samples[b].snap == nil {
		b--
	}
	if a >= b {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s window: fewer than two successful scrapes between %s and %s; no figures", name, open, close))
		return nil
	}
	if a != from || b != to {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s window: the scrape at a mark failed; the window runs from %s to %s instead",
			name, samples[a].At.Format("15:04:05.000"), samples[b].At.Format("15:04:05.000")))
	}
	w := Figures(name, Accumulate(snaps(a, b)))
	return &w
}

// changed keeps the raw series that moved: an interval lists only those,
// so that a long run's result stays small (a TF Serving page has hundreds
// of series, most of them still between two scrapes); the run, steady
// and profile windows list them all. A gauge is listed when it first
// shows and when its value changes.
func changed(raw []RawChange, gauges map[string]float64) []RawChange {
	out := raw[:0:0]
	for _, r := range raw {
		moved := (r.Increase != nil && *r.Increase != 0) || (r.Count != nil && *r.Count != 0)
		if r.Last != nil {
			// A gauge is listed when it first shows and when it changes:
			// process_open_fds 42 in every interval says nothing.
			key := r.Name + labelString(r.Labels)
			prev, seen := gauges[key]
			moved = !seen || prev != *r.Last
			gauges[key] = *r.Last
		}
		if moved {
			out = append(out, r)
		}
	}
	return out
}

func markIndex(samples []Sample, mark string) int {
	for i := range samples {
		for _, m := range samples[i].Marks {
			if m == mark {
				return i
			}
		}
	}
	return -1
}
