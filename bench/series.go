package bench

import (
	"fmt"
	"sync"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
)

// secondHistograms is the recorder's interval sink that keeps each second's
// histogram, encoded (a histogram of loadprof's range holds 190 KB of
// counts; an encoded second takes hundreds of bytes to a few KB), and
// passes it on to the interval log when there is one. The sink runs with
// the recorder locked, so it only copies the counts there: encoding (about
// a millisecond, mostly zlib's set-up) happens on a goroutine of its own.
type secondHistograms struct {
	next *report.HlogWriter
	// llm, an OpenAI-compatible target's recorder keeping its seconds,
	// has each second's stream figures closed with the latency's and
	// passed on to the interval log; nil for none.
	llm     *load.LLMRecorder
	ttftP99 map[int]int64           // by second, from llm: the series' TTFTP99Us
	cur     *hdrhistogram.Histogram // the second being recorded: its steady requests
	curWarm *hdrhistogram.Histogram // and its warm-up's, kept only when it has no steady one (as the recorder's series)
	mu      sync.Mutex              // a late second after close is dropped, not sent on a closed channel
	closed  bool
	pending chan secondCopy
	done    chan struct{}
	encoded []report.SecondHistogram
	err     error
}

type secondCopy struct {
	second int
	h      *hdrhistogram.Histogram
}

func newSecondHistograms() *secondHistograms {
	s := &secondHistograms{cur: load.NewHistogram(), curWarm: load.NewHistogram(), pending: make(chan secondCopy, 16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for c := range s.pending {
			if s.err != nil {
				continue
			}
			enc, err := report.EncodeHistogram(c.h)
			if err != nil {
				s.err = fmt.Errorf("encoding the histogram of second %d: %w", c.second, err)
				continue
			}
			s.encoded = append(s.encoded, report.SecondHistogram{Second: c.second, Histogram: enc})
		}
	}()
	return s
}

// Add counts one measured request of the current second. A second with
// steady requests keeps only them, as the recorder's series does; the
// interval log keeps both, the warm-up tagged.
func (s *secondHistograms) Add(phase load.Phase, latencyUs int64) {
	if s.next != nil {
		s.next.Add(phase == load.Warmup, latencyUs)
	}
	if phase == load.Warmup {
		_ = s.curWarm.RecordValue(latencyUs)
	} else {
		_ = s.cur.RecordValue(latencyUs)
	}
}

func (s *secondHistograms) Interval(second int) {
	if s.llm != nil {
		s.llm.CloseSeconds(second, s.addStreams)
	}
	if s.next != nil {
		s.next.Interval(second)
	}
	if s.cur.TotalCount() == 0 {
		s.cur, s.curWarm = s.curWarm, s.cur // a warm-up second
	}
	s.curWarm.Reset()
	if s.cur.TotalCount() == 0 {
		return
	}
	h := s.cur
	s.cur = load.NewHistogram()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.pending <- secondCopy{second, h} // the encoder drains it: never blocks for long
	}
}

// addStreams keeps a second's TTFT p99 for the series (the steady
// phase's when it has any, as the latency's) and hands its stream figures
// to the interval log.
func (s *secondHistograms) addStreams(second int, warmup, steady *load.LLMStats) {
	for _, st := range []*load.LLMStats{steady, warmup} {
		if st != nil && st.TTFT.TotalCount() > 0 {
			if s.ttftP99 == nil {
				s.ttftP99 = map[int]int64{}
			}
			s.ttftP99[second] = load.ValueAtPercentile(st.TTFT, 99)
			break
		}
	}
	for _, p := range []struct {
		warmup bool
		st     *load.LLMStats
	}{{true, warmup}, {false, steady}} {
		if p.st != nil && s.next != nil {
			s.next.AddStreams(p.warmup, p.st.TTFT, p.st.ITL, p.st.TPOT, p.st.E2E)
		}
	}
}

// closeStreams writes the stream figures of the seconds the last tick
// left open (requests that ended after the latency's last second was
// closed), each second apart. Call it once the recorders are frozen and
// the latency's last second is closed.
func (s *secondHistograms) closeStreams() {
	if s.llm == nil || s.next == nil {
		return
	}
	s.llm.CloseAllSeconds(func(second int, warmup, steady *load.LLMStats) {
		s.addStreams(second, warmup, steady)
		s.next.StreamsInterval(second)
	})
}

// addTTFT sets the series' TTFT p99 of each second. The recorder must be
// done with the sink.
func (s *secondHistograms) addTTFT(series []report.Second) {
	for i := range series {
		series[i].TTFTP99Us = s.ttftP99[series[i].Second]
	}
}

// close waits for the histograms still being encoded. The recorder must be
// done with the sink.
func (s *secondHistograms) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.pending)
	}
	s.mu.Unlock()
	<-s.done
}

// forSeries returns the kept histograms matched to series: the recorder
// folds the seconds past its limit into the last point, and so are their
// histograms here.
func (s *secondHistograms) forSeries(series []report.Second) ([]report.SecondHistogram, error) {
	s.close()
	if s.err != nil {
		return nil, s.err
	}
	if len(series) == 0 {
		return nil, nil
	}
	last := series[len(series)-1].Second
	out := make([]report.SecondHistogram, 0, len(s.encoded))
	var fold *hdrhistogram.Histogram
	for _, sh := range s.encoded {
		if sh.Second < last {
			out = append(out, sh)
			continue
		}
		h, err := report.DecodeHistogram(sh.Histogram)
		if err != nil {
			return nil, err
		}
		if fold == nil {
			fold = h
		} else {
			fold.Merge(h)
		}
	}
	if fold != nil {
		enc, err := report.EncodeHistogram(fold)
		if err != nil {
			return nil, err
		}
		out = append(out, report.SecondHistogram{Second: last, Histogram: enc})
	}
	return out, nil
}
