package cluster

import (
	"fmt"
	"io"
	"iter"
	"maps"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/report"
)

// writeIntervalLog writes the round's interval log (--hlog) to out: the
// seconds of every worker whose result is merged, each second's
// histograms merged across the workers, so that, as in one machine's log,
// the untagged (steady) intervals add up exactly to the merged
// histogram. origin is the merged result's start: a worker's seconds are
// moved by its own start rounded to a whole second, as report.Merge moves
// its series. A worker lost or failed is named in a comment: its seconds
// are not in the log, as its requests are not in the merged figures.
//
// The log is written once the results are in, not as the run goes: a
// worker lost late in the run would otherwise leave seconds in the log
// that the result does not count.
func (c *coordinator) writeIntervalLog(out io.WriteCloser, origin time.Time) error {
	c.mu.Lock()
	type placed struct {
		second int
		iv     wireInterval
	}
	var all []placed
	var head string
	for _, wk := range c.workers {
		if wk.result == nil {
			if wk.rep.Status == report.WorkerLost || wk.rep.Status == report.WorkerFailed {
				head += fmt.Sprintf("#[Worker %d (%s) %s: its seconds are not in this log, as its requests are not in the result's figures]\n", wk.rep.Index, wk.rep.Name, wk.rep.Status)
			}
			continue
		}
		shift := 0
		if wk.seconds.originNs != 0 {
			start := time.Unix(0, wk.seconds.originNs).Add(-wk.offset) // onto the coordinator's clock
			shift = int(math.Round(start.Sub(origin).Seconds()))
		}
		for _, iv := range wk.seconds.intervals {
			all = append(all, placed{iv.Second + shift, iv})
		}
	}
	notes := map[int]string{}
	if win := c.window; win != nil {
		closed := win.Open.Add(win.Length)
		if early := c.windowClosedAt(); !early.IsZero() {
			closed = early
		}
		for _, e := range []struct {
			at    time.Time
			state string
		}{{win.Open, "opened"}, {closed, "closed"}} {
			if d := e.at.Sub(origin); d >= 0 {
				s := int(d / time.Second)
				notes[s] += fmt.Sprintf("#[Profile window %s in the second starting at %d.000]\n", e.state, s)
			}
		}
	}
	c.mu.Unlock()
	slices.SortStableFunc(all, func(a, b placed) int { return a.second - b.second })

	seconds := func(yield func(report.HlogInterval) bool) {
		warmup, steady := newLogHistogram(), newLogHistogram()
		pendingNotes := slices.Sorted(maps.Keys(notes))
		noteUpTo := func(s int) string {
			var n string
			for len(pendingNotes) > 0 && pendingNotes[0] <= s {
				n += notes[pendingNotes[0]]
				pendingNotes = pendingNotes[1:]
			}
			return n
		}
		for i := 0; i < len(all); {
			s := all[i].second
			warmup.Reset()
			steady.Reset()
			var hasWarmup, hasSteady bool
			for ; i < len(all) && all[i].second == s; i++ {
				h, err := report.DecodeHistogram(all[i].iv.Histogram)
				if err != nil {
					continue // the worker's own encoding: cannot happen
				}
				if all[i].iv.Warmup {
					warmup.Merge(h)
					hasWarmup = true
				} else {
					steady.Merge(h)
					hasSteady = true
				}
			}
			iv := report.HlogInterval{Second: s, Note: head + noteUpTo(s)}
			head = ""
			if hasWarmup {
				iv.Warmup = warmup
			}
			if hasSteady {
				iv.Steady = steady
			}
			if !yield(iv) {
				return
			}
		}
		if rest := head + noteUpTo(math.MaxInt); rest != "" {
			yield(report.HlogInterval{Note: rest})
		}
	}
	return report.WriteHlog(out, origin, iter.Seq[report.HlogInterval](seconds))
}

func newLogHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(report.HistogramMinUs, report.HistogramMaxUs, report.HistogramDigits)
}
