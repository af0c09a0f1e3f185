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
// histograms merged across the workers tag by tag, so that, as in one
// machine's log, the untagged (steady) intervals add up exactly to the
// merged latency histogram and an LLM target's ttft, itl, tpot and e2e
// intervals to its stream histograms. origin is the merged result's start: a worker's seconds are
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
		// One histogram per tag, reused from second to second.
		merged := map[string]*hdrhistogram.Histogram{}
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
			var tags []string
			for ; i < len(all) && all[i].second == s; i++ {
				h, err := report.DecodeHistogram(all[i].iv.Histogram)
				if err != nil {
					continue // the worker's own encoding: cannot happen
				}
				tag := all[i].iv.Tag
				m := merged[tag]
				if m == nil {
					m = newLogHistogram()
					merged[tag] = m
				}
				if !slices.Contains(tags, tag) {
					m.Reset()
					tags = append(tags, tag)
				}
				m.Merge(h)
			}
			slices.Sort(tags) // report orders what it knows; the rest by name
			iv := report.HlogInterval{Second: s, Note: head + noteUpTo(s)}
			head = ""
			// The latency's intervals and an LLM target's stream
			// figures go as report writes them for one machine; a tag
			// loadprof does not write (a newer worker's) as a tagged
			// line of the same format among the second's comments.
			for _, tag := range tags {
				switch kind, _, known := report.ParseHlogTag(tag); {
				case tag == report.HlogWarmupTag:
					iv.Warmup = merged[tag]
				case tag == "":
					iv.Steady = merged[tag]
				case known && kind != "":
					if iv.Streams == nil {
						iv.Streams = map[string]*hdrhistogram.Histogram{}
					}
					iv.Streams[tag] = merged[tag]
				default:
					iv.Note += taggedLine(tag, s, merged[tag])
				}
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

// taggedLine is one interval of the log with its tag: second's start
// relative to the base time, its length, its maximum in milliseconds
// (values in microseconds) and the compressed histogram, as report's
// writer writes the latency's.
func taggedLine(tag string, second int, h *hdrhistogram.Histogram) string {
	payload, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return fmt.Sprintf("#[Second %d of Tag=%s could not be encoded: %v]\n", second, tag, err)
	}
	return fmt.Sprintf("Tag=%s,%d.000,1.000,%.3f,%s\n", tag, second, float64(h.Max())/1000, payload)
}

func newLogHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(report.HistogramMinUs, report.HistogramMaxUs, report.HistogramDigits)
}
