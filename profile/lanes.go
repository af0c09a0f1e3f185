package profile

import "time"

// Lanes places possibly overlapping spans on numbered lines so that the
// spans of one line never overlap: the trace viewer draws a line as one
// row. Spans must be placed in order of their start.
type Lanes struct {
	ends []time.Time
}

// Place returns the line (0-based) for a span and whether it is a new one.
func (l *Lanes) Place(start, end time.Time) (int, bool) {
	for i, e := range l.ends {
		if !e.After(start) {
			l.ends[i] = end
			return i, false
		}
	}
	l.ends = append(l.ends, end)
	return len(l.ends) - 1, true
}
