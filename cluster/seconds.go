package cluster

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/report"
)

// The tags of the interval log's intervals, as report writes them: the
// latency's untagged (steady) and report.HlogWarmupTag, an
// OpenAI-compatible target's stream figures report.HlogLLMTag's. The
// cluster carries every tag as it is written and merges the workers'
// seconds tag by tag.
const (
	tagSteady = ""
	tagWarmup = report.HlogWarmupTag
)

// tagTTFT and the others name the stream figures' steady tags, and
// warmupTagPrefix makes one its warm-up's (report.HlogLLMTag).
var (
	tagTTFT, tagITL, tagTPOT, tagE2E = report.HlogLLMTag("ttft", false), report.HlogLLMTag("itl", false),
		report.HlogLLMTag("tpot", false), report.HlogLLMTag("e2e", false)
	warmupTagPrefix = report.HlogWarmupTag + "-"
)

// secondsTap is the worker's interval log (bench.Config.IntervalLog):
// instead of a file, it keeps the intervals bench writes, one histogram
// per phase and second, until the coordinator has them. bench's log
// writer writes from a goroutine of its own, hence the lock.
type secondsTap struct {
	mu       sync.Mutex
	partial  []byte // a line not yet ended
	originNs int64
	base     int            // index of pending[0] in the whole sequence
	pending  []wireInterval // not yet acknowledged by the coordinator
}

func (t *secondsTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.line(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	return len(p), nil
}

func (t *secondsTap) Close() error { return nil }

// line takes one line of the log: the base time from the header, an
// interval, nothing from the other comments.
func (t *secondsTap) line(l string) {
	if rest, ok := strings.CutPrefix(l, "#[BaseTime: "); ok {
		if f, _, ok := strings.Cut(rest, " "); ok {
			if secs, err := strconv.ParseFloat(f, 64); err == nil {
				// Written to the millisecond.
				t.originNs = time.UnixMilli(int64(secs*1000 + 0.5)).UnixNano()
			}
		}
		return
	}
	if l == "" || l[0] == '#' || l[0] == '"' {
		return
	}
	tag := ""
	if rest, ok := strings.CutPrefix(l, "Tag="); ok {
		tag, l, _ = strings.Cut(rest, ",")
	}
	f := strings.Split(l, ",")
	if len(f) != 4 {
		return
	}
	start, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return
	}
	t.pending = append(t.pending, wireInterval{Second: int(start), Tag: tag, Histogram: f[3]})
}

// batch is what the coordinator does not hold yet, at most limit
// intervals (0: all).
func (t *secondsTap) batch(limit int) secondsBatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.pending)
	if limit > 0 {
		n = min(n, limit)
	}
	return secondsBatch{OriginNs: t.originNs, From: t.base, Seconds: append([]wireInterval(nil), t.pending[:n]...)}
}

// acked drops what the coordinator says it holds: the first have of the
// sequence.
func (t *secondsTap) acked(have int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if drop := have - t.base; drop > 0 && drop <= len(t.pending) {
		t.pending = append(t.pending[:0:0], t.pending[drop:]...)
		t.base = have
	}
}

// workerSeconds are a worker's intervals as the coordinator holds them.
type workerSeconds struct {
	originNs  int64 // on the worker's clock; 0 until known
	intervals []wireInterval
}

// add takes a batch: the part of it not held yet, when it follows on
// from what is held. It returns how many are held.
func (s *workerSeconds) add(b secondsBatch) int {
	if b.OriginNs != 0 {
		s.originNs = b.OriginNs
	}
	if b.From <= len(s.intervals) && b.From+len(b.Seconds) > len(s.intervals) {
		s.intervals = append(s.intervals, b.Seconds[len(s.intervals)-b.From:]...)
	}
	return len(s.intervals)
}

// steady is the merge of the steady latency intervals (untagged), and
// the seconds from the worker's start they cover (the end of the last
// interval of any phase or tag).
func (s *workerSeconds) steady() (*hdrhistogram.Histogram, float64, error) {
	h := hdrhistogram.New(report.HistogramMinUs, report.HistogramMaxUs, report.HistogramDigits)
	covered := 0
	for _, iv := range s.intervals {
		covered = max(covered, iv.Second+1)
		if iv.Tag != tagSteady {
			continue
		}
		ih, err := report.DecodeHistogram(iv.Histogram)
		if err != nil {
			return nil, 0, err
		}
		h.Merge(ih)
	}
	return h, float64(covered), nil
}
