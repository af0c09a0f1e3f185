package servermetrics

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

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
	// OtherModels are, for each known family, the models (sorted) whose
	// series the model filter left out: with no figures of the model,
	// they say the model label is wrong.
	OtherModels map[string][]string `json:"other_models,omitempty"`
}

// summary cuts samples into windows as they arrive: the whole run, the
// steady phase and the profile window (between their marks), and each
// interval between two successful scrapes in a row. It keeps the last
// successful snapshot and one Accumulation a window, never the snapshots
// themselves: a long run at a short interval of a large page costs what
// one scrape does, not one per scrape. A mark whose scrape failed moves
// its window's edge to the nearest successful scrape inside it, with a
// warning.
type summary struct {
	r       Report // the counts, the intervals and the failed scrapes' warnings
	prev    *Snapshot
	run     *Accumulation
	windows [2]markWindow
	gauges  map[string]float64 // each gauge's last value an interval listed
	// rawKept and rawDropped count the raw series the intervals listed
	// and left out (keepRaw).
	rawKept, rawDropped int
	// pageDropped is the most series of unknown families a page had
	// beyond those kept (maxRawSeries).
	pageDropped int
	// prevUnread are the families the previous snapshot could not read
	// (a NaN or Inf count): the interval after it has no figure of them.
	prevUnread map[string]bool
	// otherModels gathers the snapshots' otherModels.
	otherModels map[string]map[string]bool
}

// The raw series an interval lists, and all the intervals together: a
// page of thousands of changing counters would otherwise make the
// result, and the memory holding it, grow with the run's length. The
// run, steady and profile windows still list every series that moved.
const (
	rawPerInterval = 1000
	rawInAll       = 100_000
)

// keepRaw is the part of an interval's raw series the caps leave.
func (s *summary) keepRaw(raw []RawChange) []RawChange {
	n := min(len(raw), rawPerInterval, max(0, rawInAll-s.rawKept))
	s.rawDropped += len(raw) - n
	s.rawKept += n
	if n == len(raw) {
		return raw
	}
	return append([]RawChange(nil), raw[:n]...) // not raw[:n], which keeps the rest alive
}

// markWindow is a window between two marks.
type markWindow struct {
	name, open, close string
	opened, closed    bool
	openAt, closeAt   time.Time     // when the marks were set
	acc               *Accumulation // from its first successful scrape; nil before
	cutStart, cutEnd  bool          // the scrape at a mark failed
}

func newSummary(url, model string) *summary {
	return &summary{
		r: Report{URL: url, Model: model},
		windows: [2]markWindow{
			{name: "steady", open: MarkSteadyStart, close: MarkSteadyEnd},
			{name: "profile", open: MarkProfileOpen, close: MarkProfileClose},
		},
		gauges: map[string]float64{},
	}
}

// summarize is the report of samples that carry their snapshots.
func summarize(url, model string, samples []Sample) Report {
	s := newSummary(url, model)
	for _, sm := range samples {
		s.add(sm, sm.snap)
	}
	return s.report()
}

// add takes the next sample; snap is what it read, nil when it failed.
func (s *summary) add(sm Sample, snap *Snapshot) {
	if snap == nil && sm.Abandoned {
		// Not a scrape the endpoint failed: loadprof stopped waiting. Its
		// marks still close their windows (at the scrape before).
		s.r.Warnings = append(s.r.Warnings, sm.Warning)
	} else {
		s.r.Scrapes++
	}
	if snap == nil && !sm.Abandoned {
		s.r.FailedScrapes++
		s.r.Warnings = append(s.r.Warnings, sm.Warning)
	}
	var unread map[string]bool
	if snap != nil {
		snap, unread = s.readable(snap)
	}
	// A window already open takes the scrape first: a close mark in it
	// makes it the window's last.
	for i := range s.windows {
		if w := &s.windows[i]; snap != nil && w.acc != nil && !w.closed {
			w.acc.Add(s.prev, snap)
		}
	}
	for i := range s.windows {
		w := &s.windows[i]
		if at, ok := sm.markAt(w.open); ok && !w.opened {
			w.opened, w.openAt = true, at
			w.cutStart = snap == nil
			if snap != nil && !w.closed {
				w.acc = NewAccumulation()
				w.acc.Add(nil, snap)
			}
		} else if w.opened && !w.closed && w.acc == nil && snap != nil {
			// The scrape at the open mark failed: the window opens here.
			w.acc = NewAccumulation()
			w.acc.Add(nil, snap)
		}
		if at, ok := sm.markAt(w.close); ok && !w.closed {
			w.closed, w.closeAt = true, at
			w.cutEnd = snap == nil
		}
	}
	if snap == nil {
		return
	}
	s.pageDropped = max(s.pageDropped, snap.DroppedRaw)
	for family, models := range snap.otherModels {
		if s.otherModels == nil {
			s.otherModels = map[string]map[string]bool{}
		}
		if s.otherModels[family] == nil {
			s.otherModels[family] = map[string]bool{}
		}
		for m := range models {
			s.otherModels[family][m] = true
		}
	}
	if s.run == nil {
		s.run = NewAccumulation()
	}
	s.run.Add(s.prev, snap)
	if s.prev != nil {
		// An interval lists only the raw series that moved: a long run's
		// result stays small (a TF Serving page has hundreds of series,
		// most of them still between two scrapes); the run, steady and
		// profile windows list them all.
		acc := Accumulate([]*Snapshot{s.prev, snap})
		for key, c := range acc.Changes {
			if unread[c.Family] || s.prevUnread[c.Family] {
				delete(acc.Changes, key) // no reading of it at one end
			}
		}
		iv := Figures("interval", acc)
		iv.Raw = s.keepRaw(changed(iv.Raw, s.gauges))
		s.r.Intervals = append(s.r.Intervals, iv)
	}
	s.prev, s.prevUnread = snap, unread
}

// readable is snap without the counts it could not read: a counter,
// histogram or summary series holding a NaN or Inf (a server's bug, or a
// value it could not compute on that scrape) is no reading of its family
// for that scrape. Every series of such a family takes its value from
// the previous snapshot instead (none when there is none), so that the
// windows spanning the scrape count the family's change between the
// readings around it, and a warning says so; the intervals at that
// scrape leave the family out. snap's own series are not changed (the
// parser shares them between scrapes).
func (s *summary) readable(snap *Snapshot) (*Snapshot, map[string]bool) {
	var unread map[string]bool
	for _, se := range snap.Series {
		if !finiteSeries(se) {
			if unread == nil {
				unread = map[string]bool{}
			}
			unread[se.Family] = true
		}
	}
	if unread == nil {
		return snap, nil
	}
	out := *snap
	out.Series = make(map[string]*Series, len(snap.Series))
	for key, se := range snap.Series {
		if !unread[se.Family] {
			out.Series[key] = se
		}
	}
	if s.prev != nil {
		for key, se := range s.prev.Series {
			if unread[se.Family] {
				out.Series[key] = se
			}
		}
	}
	names := make([]string, 0, len(unread))
	for name := range unread {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.r.Warnings = append(s.r.Warnings, fmt.Sprintf("%s: %s read NaN or Inf in a scrape: that scrape's reading of it is left out (the figures over the windows around it use the readings before and after)",
			s.r.URL, name))
	}
	return &out, unread
}

// finiteSeries reports whether a counter, histogram or summary series
// holds only numbers; gauges are left to the figures, which skip a NaN
// reading of them already.
func finiteSeries(se *Series) bool {
	ok := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch se.Kind {
	case Counter:
		return ok(se.Value)
	case Histogram, Summary:
		if !ok(se.Count) || !ok(se.Sum) {
			return false
		}
		for _, v := range se.Cumulative {
			if !ok(v) {
				return false
			}
		}
	}
	return true
}

// report is the windows so far.
func (s *summary) report() Report {
	r := s.r
	r.Warnings = append([]string(nil), s.r.Warnings...)
	r.Intervals = append([]Window(nil), s.r.Intervals...)
	if s.rawDropped > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the intervals list at most %d raw series each and %d in all: %d changes of raw series were left out of them (the steady and run windows list every series that moved)",
			rawPerInterval, rawInAll, s.rawDropped))
	}
	if s.pageDropped > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the page had %s series of families loadprof does not know beyond the first %s, which it keeps raw: they were left out (every family loadprof knows is read)",
			thousands(s.pageDropped), thousands(maxRawSeries)))
	}
	for family, models := range s.otherModels {
		if r.OtherModels == nil {
			r.OtherModels = map[string][]string{}
		}
		for m := range models {
			r.OtherModels[family] = append(r.OtherModels[family], m)
		}
		sort.Strings(r.OtherModels[family])
	}
	if s.run == nil {
		return r
	}
	run := Figures("run", s.run)
	r.Run = &run
	r.Steady = s.windows[0].figures(&r)
	r.Profile = s.windows[1].figures(&r)
	return r
}

func (w *markWindow) figures(r *Report) *Window {
	switch {
	case !w.opened && !w.closed:
		return nil
	case !w.opened || !w.closed:
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %s window: only one of its marks %s and %s was set", r.URL, w.name, w.open, w.close))
		return nil
	case w.acc == nil || w.acc.Snapshots < 2:
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %s window: fewer than two successful scrapes between %s and %s; no figures", r.URL, w.name, w.open, w.close))
		return nil
	}
	if w.cutStart || w.cutEnd {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %s window: the scrape at a mark failed; the window runs from %s to %s instead",
			r.URL, w.name, w.acc.From.Format("15:04:05.000"), w.acc.To.Format("15:04:05.000")))
	}
	f := Figures(w.name, w.acc)
	if !w.cutStart {
		f.StartLagMs = lagMs(w.acc.FromAnswered, w.openAt)
	}
	if !w.cutEnd {
		f.EndLagMs = lagMs(w.acc.ToAnswered, w.closeAt)
	}
	return &f
}

func lagMs(scrape, mark time.Time) *float64 {
	v := max(0, float64(scrape.Sub(mark))/1e6)
	return &v
}

// changed keeps the raw series that moved; a gauge is listed when it
// first shows and when its value changes: process_open_fds 42 in every
// interval says nothing.
func changed(raw []RawChange, gauges map[string]float64) []RawChange {
	var out []RawChange // not raw[:0:0], which would keep all of raw (and its labels) alive
	for _, r := range raw {
		moved := (r.Increase != nil && *r.Increase != 0) || (r.Count != nil && *r.Count != 0)
		if r.Last != nil {
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

// thousands is n with commas between its groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
