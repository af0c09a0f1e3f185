package servermetrics

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Change is what happened to one series over a window: for counters the
// increase, for histograms and summaries the increase of the count, sum
// and buckets, for gauges the sum, number and last of the values seen at
// each scrape (not the values: a window holds one Change a series however
// long the run).
type Change struct {
	Family string
	Kind   Kind
	Labels map[string]string

	Increase   float64   // counter
	Count, Sum float64   // histogram, summary
	Bounds     []float64 // histogram
	Cumulative []float64 // histogram, cumulative increase per bucket
	// Gauge, untyped: the values scraped in the window.
	GaugeSum  float64
	GaugeN    int
	GaugeLast float64
	Resets    int // times the series went down (the server restarted)
}

// Accumulation is the sum of the scrape-to-scrape changes of every
// series over a window. It is built as scrapes arrive (Add), so that a
// window costs one Change a series, never the snapshots it spans.
type Accumulation struct {
	From, To time.Time // when the first and last scrapes were sent
	// FromAnswered and ToAnswered are when their answers were read.
	FromAnswered, ToAnswered time.Time
	Changes                  map[string]*Change
	Warnings                 []string
	// Snapshots is how many successful scrapes were added.
	Snapshots int

	stepResets     int    // series that went down in the step being added
	stepFirstReset string // the first of them
}

// NewAccumulation is an empty window.
func NewAccumulation() *Accumulation { return &Accumulation{Changes: map[string]*Change{}} }

// Accumulate sums the changes between consecutive snapshots (nil ones,
// failed scrapes, are skipped). A series that went down between two
// scrapes was reset by a server restart: its increase over that step is
// its new value (what it counted since the restart), and a warning says
// so.
func Accumulate(snaps []*Snapshot) *Accumulation {
	acc := NewAccumulation()
	var prev *Snapshot
	for _, s := range snaps {
		if s == nil {
			continue
		}
		acc.Add(prev, s)
		prev = s
	}
	return acc
}

// Add extends the window to s, the scrape after prev: the first snapshot
// added opens the window (prev is then ignored), each later one adds the
// change from prev, the window's previous snapshot.
func (acc *Accumulation) Add(prev, s *Snapshot) {
	if acc.Snapshots == 0 {
		acc.From, acc.FromAnswered = s.At, answered(s)
	} else {
		acc.step(prev, s)
		acc.warnResets(prev.At, s.At)
	}
	acc.gauges(s)
	acc.To, acc.ToAnswered = s.At, answered(s)
	acc.Snapshots++
}

func (acc *Accumulation) change(key string, se *Series) *Change {
	c := acc.Changes[key]
	if c == nil {
		c = &Change{Family: se.Family, Kind: se.Kind, Labels: se.Labels}
		acc.Changes[key] = c
	}
	return c
}

func (acc *Accumulation) gauges(s *Snapshot) {
	for key, se := range s.Series {
		if (se.Kind == Gauge || se.Kind == Untyped) && !math.IsNaN(se.Value) && !math.IsInf(se.Value, 0) {
			c := acc.change(key, se)
			c.GaugeSum += se.Value
			c.GaugeN++
			c.GaugeLast = se.Value
		}
	}
}

// step adds the change from a to b. A series that appears only in b
// started counting after a (a model that loaded, a first request with a
// new label): all of its value is new.
func (acc *Accumulation) step(a, b *Snapshot) {
	for key, nb := range b.Series {
		na := a.Series[key]
		if na != nil && na.Kind != nb.Kind {
			na = nil
		}
		if acc.Changes[key] == nil && knownByName[nb.Family] == nil && na != nil && unmoved(na, nb) {
			// A series loadprof has no name for that has not moved costs
			// nothing until it does: a large static page would otherwise
			// hold a Change a series in every window.
			continue
		}
		switch nb.Kind {
		case Counter:
			c := acc.change(key, nb)
			d, reset := increase(na, nb.Value, func(s *Series) float64 { return s.Value })
			c.Increase += d
			acc.noteReset(c, reset, key, a.At, b.At)
		case Summary:
			c := acc.change(key, nb)
			dc, reset := increase(na, nb.Count, func(s *Series) float64 { return s.Count })
			if reset || na == nil {
				c.Sum += nb.Sum
			} else {
				c.Sum += nb.Sum - na.Sum
			}
			c.Count += dc
			acc.noteReset(c, reset, key, a.At, b.At)
		case Histogram:
			c := acc.change(key, nb)
			acc.histogramStep(c, key, na, nb, a.At, b.At)
		}
	}
}

// unmoved reports whether a counter, summary or histogram series is the
// same in a and b.
func unmoved(a, b *Series) bool {
	switch b.Kind {
	case Counter:
		return a.Value == b.Value
	case Summary:
		return a.Count == b.Count && a.Sum == b.Sum
	case Histogram:
		return a.Count == b.Count && a.Sum == b.Sum && sameBounds(a.Bounds, b.Bounds) && sameBounds(a.Cumulative, b.Cumulative)
	}
	return false
}

// increase is the counter increase from a (nil when the series is new) to
// value, and whether the counter went down on the way.
func increase(a *Series, value float64, get func(*Series) float64) (float64, bool) {
	if a == nil {
		return value, false
	}
	if old := get(a); value >= old {
		return value - old, false
	}
	return value, true
}

func (acc *Accumulation) noteReset(c *Change, reset bool, key string, from, to time.Time) {
	if !reset {
		return
	}
	c.Resets++
	if acc.stepResets == 0 {
		acc.stepFirstReset = key
	}
	acc.stepResets++
}

// warnResets says once for the step from..to that series went down: one
// restart resets every series at once, and one line says it.
func (acc *Accumulation) warnResets(from, to time.Time) {
	if acc.stepResets == 0 {
		return
	}
	which := acc.stepFirstReset
	if acc.stepResets > 1 {
		which = fmt.Sprintf("%s and %d other series", which, acc.stepResets-1)
	}
	acc.Warnings = append(acc.Warnings, fmt.Sprintf("%s went down between the scrapes at %s and %s: the server restarted (or reset them); what it counted in that interval before the restart is missing, the rest is included",
		which, from.Format("15:04:05.000"), to.Format("15:04:05.000")))
	acc.stepResets, acc.stepFirstReset = 0, ""
}

func (acc *Accumulation) histogramStep(c *Change, key string, a, b *Series, from, to time.Time) {
	if len(c.Bounds) == 0 && c.Count == 0 {
		c.Bounds = b.Bounds
		c.Cumulative = make([]float64, len(b.Bounds))
	}
	if !sameBounds(c.Bounds, b.Bounds) {
		acc.Warnings = append(acc.Warnings, fmt.Sprintf("%s changed its bucket layout at %s: the buckets before are dropped", key, to.Format("15:04:05.000")))
		c.Bounds = b.Bounds
		c.Cumulative = make([]float64, len(b.Bounds))
		c.Count, c.Sum = 0, 0
	}
	reset := a != nil && (b.Count < a.Count || !sameBounds(a.Bounds, b.Bounds) || wentDown(a.Cumulative, b.Cumulative))
	if a == nil || reset {
		c.Count += b.Count
		c.Sum += b.Sum
		for i, v := range b.Cumulative {
			c.Cumulative[i] += v
		}
		acc.noteReset(c, reset, key, from, to)
		return
	}
	c.Count += b.Count - a.Count
	c.Sum += b.Sum - a.Sum
	for i, v := range b.Cumulative {
		c.Cumulative[i] += v - a.Cumulative[i]
	}
}

func sameBounds(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func wentDown(a, b []float64) bool {
	for i := range a {
		if b[i] < a[i] {
			return true
		}
	}
	return false
}

// sortedKeys returns the change keys in order, so that figures and raw
// series come out the same way every time.
func (acc *Accumulation) sortedKeys() []string {
	keys := make([]string, 0, len(acc.Changes))
	for k := range acc.Changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// answered is when s's answer was read, At when that is not known.
func answered(s *Snapshot) time.Time {
	if s.Answered.IsZero() {
		return s.At
	}
	return s.Answered
}
