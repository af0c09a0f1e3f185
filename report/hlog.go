package report

import (
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/outfile"
)

// HlogWarmupTag is the tag of the warm-up's intervals in the interval log.
// The steady phase's intervals are untagged, so HdrHistogram's tools, which
// read untagged intervals unless told a tag, report the steady phase as
// result.json does, and `-tag warmup` selects the warm-up.
const HlogWarmupTag = "warmup"

// HlogLLMTag is the tag of an OpenAI-compatible target's stream figure
// kind (one of LLMKinds: ttft, itl, tpot, e2e) in the interval log: the
// kind itself for the steady phase, "warmup-" and the kind for the
// warm-up. Untagged intervals stay the latency, so a reader of the
// latency alone sees what it saw before; HdrHistogram's log tools select
// a figure with -tag.
func HlogLLMTag(kind string, warmup bool) string {
	if warmup {
		return HlogWarmupTag + "-" + kind
	}
	return kind
}

// ParseHlogTag says what an interval log's tag holds: kind "" for the
// latency (untagged, or HlogWarmupTag), else the stream figure's kind
// (LLMKinds); warmup for the warm-up's intervals. ok is false for a tag
// loadprof does not write.
func ParseHlogTag(tag string) (kind string, warmup, ok bool) {
	switch tag {
	case "":
		return "", false, true
	case HlogWarmupTag:
		return "", true, true
	}
	k, warm := tag, false
	if rest, cut := strings.CutPrefix(tag, HlogWarmupTag+"-"); cut {
		k, warm = rest, true
	}
	if slices.Contains(LLMKinds, k) {
		return k, warm, true
	}
	return "", false, false
}

// hlogStreams is one second's stream histograms, [0] the warm-up's and
// [1] the steady phase's, each in LLMKinds' order; nil: not written.
type hlogStreams [2][4]*hdrhistogram.Histogram

// hlogStreamTags are the stream figures' tags by phase and kind, as
// hlogStreams holds them.
var hlogStreamTags = func() (tags [2][4]string) {
	for k, kind := range LLMKinds {
		tags[0][k], tags[1][k] = HlogLLMTag(kind, true), HlogLLMTag(kind, false)
	}
	return tags
}()

// streamsComment says in the log what the stream figures' tags are.
var streamsComment = fmt.Sprintf("#[Stream figures of an OpenAI-compatible target, in microseconds: Tag=%s, %s, %s, %s intervals are the steady phase's (result.json's llm_histograms), Tag=%s and the others the warm-up's]\n",
	HlogLLMTag("ttft", false), HlogLLMTag("itl", false), HlogLLMTag("tpot", false), HlogLLMTag("e2e", false), HlogLLMTag("ttft", true))

// HlogWriter streams an HdrHistogram interval log (the format of
// HdrHistogram's HistogramLogWriter, which its log tools read): one
// histogram per second of the run, values in microseconds, start times in
// milliseconds. Every second is written (and reaches the file) as soon as
// it ends, so the log can be followed while the run goes on.
//
// An OpenAI-compatible target's stream figures (TTFT, ITL, TPOT, end to
// end) go in the same log, as intervals tagged HlogLLMTag beside each
// second's latency (KeepStreams).
//
// The recorder calls Add, AddStreams and Interval with its lock held, so
// they only record and hand the finished second to a goroutine that
// encodes and writes it: a slow disk never holds up the load.
type HlogWriter struct {
	out         io.WriteCloser
	origin      time.Time
	warn        io.Writer                    // where a failed write is said at once; nil for nowhere
	windowState func() (bool, time.Duration) // the profile window's state and since when, for the comments that mark it; nil without one

	// Owned by the recorder's lock.
	warmup, steady *hdrhistogram.Histogram
	steadyBegun    bool // a steady request has finished, or there is no warm-up
	windowWas      bool
	streams        bool        // KeepStreams was called
	streamsSaid    bool        // the comment on the stream tags is written
	curStreams     hlogStreams // the current second's stream histograms, both phases (nil before KeepStreams)
	streamsIn      [2]bool     // the current second has stream values of the phase

	mu      sync.Mutex
	queue   []hlogSecond
	free    []*hdrhistogram.Histogram
	closing bool
	wake    chan struct{}
	done    chan struct{}
	err     error // the first failed write; read once done is closed
}

// hlogSecond is one second on its way to the file.
type hlogSecond struct {
	second         int
	note           string                  // a comment written before the intervals, or ""
	warmup, steady *hdrhistogram.Histogram // nil: no interval of that phase this second
	streams        hlogStreams
}

// NewHlogWriter creates the log at path (see NewHlog), named after flag
// in errors.
func NewHlogWriter(flag, path string, origin time.Time, hasWarmup bool, warn io.Writer) (*HlogWriter, error) {
	out, err := outfile.Stream(flag, path)
	if err != nil {
		return nil, err
	}
	return NewHlog(out, origin, hasWarmup, warn)
}

// NewHlog starts a log on out and writes its header; Close closes out.
// Times in it are relative to origin (the run's clock), written to the
// millisecond. hasWarmup says whether the plan has a warm-up: seconds
// before the first steady request finishes are the warm-up's only then.
func NewHlog(out io.WriteCloser, origin time.Time, hasWarmup bool, warn io.Writer) (*HlogWriter, error) {
	w := &HlogWriter{
		out: out, origin: origin, warn: warn,
		warmup: newHistogram(), steady: newHistogram(), steadyBegun: !hasWarmup,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if _, err := out.Write(w.header()); err != nil {
		_ = out.Close()
		return nil, err
	}
	go w.writeLoop()
	return w, nil
}

// header is what HdrHistogram's writers put first, with the start and base
// times to the millisecond (as Java's HistogramLogWriter writes them) and
// comments that say what the values and tags are.
func (w *HlogWriter) header() []byte {
	ms := w.origin.UnixMilli()
	secs := strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
	iso := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	return fmt.Appendf(nil, "#[Logged with loadprof %s]\n"+
		"#[Histogram values are in microseconds; the max column is in milliseconds]\n"+
		"#[Untagged intervals are the steady phase (result.json's statistics); Tag=%s intervals are the warm-up]\n"+
		"#[Histogram log format version %s]\n"+
		"#[StartTime: %s (seconds since epoch), %s]\n"+
		"#[BaseTime: %s (seconds since epoch)]\n"+
		"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
		Version, HlogWarmupTag, hdrhistogram.HISTOGRAM_LOG_FORMAT_VERSION, secs, iso, secs)
}

// WatchWindow marks in the log, as comments, the seconds in which the
// profile window opened and closed. The window is not a tag: its requests
// are also the steady phase's, and tools that add up every interval
// whatever its tag would count them twice.
func (w *HlogWriter) WatchWindow(state func() (open bool, since time.Duration)) {
	w.windowState = state
}

// Add records one request's latency, of the warm-up or the steady phase,
// in the current second.
func (w *HlogWriter) Add(warmup bool, latencyUs int64) {
	if warmup {
		_ = w.warmup.RecordValue(latencyUs)
		return
	}
	w.steadyBegun = true
	_ = w.steady.RecordValue(latencyUs)
}

// KeepStreams makes the log carry stream figures (AddStreams); call it
// before the first Interval.
func (w *HlogWriter) KeepStreams() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.streams = true
	for p := range w.curStreams {
		for k := range w.curStreams[p] {
			w.curStreams[p][k] = w.take()
		}
	}
}

// AddStreams adds a phase's stream histograms (TTFT, ITL, TPOT, end to
// end, in us) to the current second. The histograms are copied.
func (w *HlogWriter) AddStreams(warmup bool, ttft, itl, tpot, e2e *hdrhistogram.Histogram) {
	if !w.streams {
		return
	}
	p := phaseIndex(warmup)
	for k, h := range [4]*hdrhistogram.Histogram{ttft, itl, tpot, e2e} {
		if h != nil && h.TotalCount() > 0 {
			w.curStreams[p][k].Merge(h)
			w.streamsIn[p] = true
		}
	}
}

func phaseIndex(warmup bool) int {
	if warmup {
		return 0
	}
	return 1
}

// Interval ends second and queues it for the file: a warm-up interval while
// the warm-up runs (also empty, so a stalled warm-up shows) and whenever
// warm-up requests still finish, a steady one every second from the first
// steady request on. The stream figures of a phase are written whenever
// its latency is, and in any second that holds some.
func (w *HlogWriter) Interval(second int) {
	w.interval(second, true)
}

// StreamsInterval queues second with only the stream figures added since
// the last Interval: those of requests that ended after the latency's
// last second was closed.
func (w *HlogWriter) StreamsInterval(second int) {
	w.interval(second, false)
}

func (w *HlogWriter) interval(second int, latency bool) {
	s := hlogSecond{second: second}
	if w.windowState != nil {
		// A change after this second ended (the second is closed late,
		// when a request of the next one finishes) is the next second's.
		if open, since := w.windowState(); open != w.windowWas && since < time.Duration(second+1)*time.Second {
			w.windowWas = open
			second := int(since / time.Second)
			state := "closed"
			if open {
				state = "opened"
			}
			s.note = fmt.Sprintf("#[Profile window %s in the second starting at %d.000]\n", state, second)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if latency && (!w.steadyBegun || w.warmup.TotalCount() > 0) {
		s.warmup, w.warmup = w.warmup, w.take()
	}
	if latency && w.steadyBegun {
		s.steady, w.steady = w.steady, w.take()
	}
	if w.streams {
		if !w.streamsSaid {
			w.streamsSaid = true
			s.note = streamsComment + s.note
		}
		for p, latencyLine := range [2]bool{s.warmup != nil, s.steady != nil} {
			if !latencyLine && !w.streamsIn[p] {
				continue
			}
			for k := range w.curStreams[p] {
				s.streams[p][k], w.curStreams[p][k] = w.curStreams[p][k], w.take()
			}
			w.streamsIn[p] = false
		}
	}
	w.queue = append(w.queue, s)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns an empty histogram, one the writer is done with if it can.
// Called with w.mu held.
func (w *HlogWriter) take() *hdrhistogram.Histogram {
	if n := len(w.free); n > 0 {
		h := w.free[n-1]
		w.free = w.free[:n-1]
		return h
	}
	return newHistogram()
}

// writeLoop writes what Interval queues, every second's lines in one write,
// until close.
func (w *HlogWriter) writeLoop() {
	defer close(w.done)
	var buf []byte
	for {
		<-w.wake
		w.mu.Lock()
		batch, closing := w.queue, w.closing
		w.queue = nil
		w.mu.Unlock()
		buf = buf[:0]
		for _, s := range batch {
			buf = w.appendSecond(buf, s)
		}
		if len(buf) > 0 && w.err == nil {
			if _, err := w.out.Write(buf); err != nil {
				w.err = err
				if w.warn != nil {
					fmt.Fprintf(w.warn, "warning: %v; the run goes on, the log stops here, and the other outputs are written at the end\n", err)
				}
			}
		}
		w.mu.Lock()
		for _, s := range batch {
			hs := []*hdrhistogram.Histogram{s.warmup, s.steady}
			for p := range s.streams {
				hs = append(hs, s.streams[p][:]...)
			}
			for _, h := range hs {
				if h != nil {
					h.Reset()
					w.free = append(w.free, h)
				}
			}
		}
		w.mu.Unlock()
		if closing {
			return
		}
	}
}

// appendSecond appends the lines of one second: start time relative to
// BaseTime and length in seconds, the maximum in milliseconds (microsecond
// values over the ratio 1000, as Java's writer is told for them), and the
// compressed histogram. The latency comes first, then the stream figures,
// the warm-up before the steady phase.
func (w *HlogWriter) appendSecond(buf []byte, s hlogSecond) []byte {
	buf = append(buf, s.note...)
	type tagged struct {
		tag string
		h   *hdrhistogram.Histogram
	}
	lines := make([]tagged, 0, 10)
	lines = append(lines, tagged{HlogWarmupTag, s.warmup}, tagged{"", s.steady})
	for p := range s.streams {
		for k, h := range s.streams[p] {
			lines = append(lines, tagged{hlogStreamTags[p][k], h})
		}
	}
	for _, iv := range lines {
		if iv.h == nil {
			continue
		}
		payload, err := iv.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			// Cannot happen for a histogram of newHistogram's range;
			// say so in the log rather than lose the second silently.
			buf = fmt.Appendf(buf, "#[Second %d could not be encoded: %v]\n", s.second, err)
			continue
		}
		if iv.tag != "" {
			buf = append(buf, "Tag="+iv.tag+","...)
		}
		buf = fmt.Appendf(buf, "%d.000,1.000,%.3f,%s\n", s.second, float64(iv.h.Max())/1000, payload)
	}
	return buf
}

// Close writes what is queued, stops the writer and closes the file. The
// error is the first failed write, as an *outfile.Error naming the flag.
func (w *HlogWriter) Close() error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	err := w.err
	if cerr := w.out.Close(); err == nil {
		err = cerr
	}
	return err
}

// HlogInterval is one second of an interval log written whole: its
// warm-up and steady histograms (nil: none that second) and a comment
// written before them ("" for none, else whole lines). Streams holds an
// OpenAI-compatible target's stream figures of the second by tag
// (HlogLLMTag); a tag absent or nil is not written.
type HlogInterval struct {
	Second         int
	Note           string
	Warmup, Steady *hdrhistogram.Histogram
	Streams        map[string]*hdrhistogram.Histogram
}

// WriteHlog writes a whole interval log, in the format HlogWriter streams,
// to out and closes it: what a coordinated run (run --workers) writes from
// its workers' seconds once they are all in. Times are relative to origin.
// Each second is encoded as it comes, so seconds may reuse their
// histograms.
func WriteHlog(out io.WriteCloser, origin time.Time, seconds iter.Seq[HlogInterval]) error {
	w := &HlogWriter{origin: origin}
	buf := w.header()
	var err error
	streamsSaid := false
	for s := range seconds {
		sec := hlogSecond{second: s.Second, note: s.Note, warmup: s.Warmup, steady: s.Steady}
		for p, warmup := range [2]bool{true, false} {
			for k, kind := range LLMKinds {
				if h := s.Streams[HlogLLMTag(kind, warmup)]; h != nil {
					if !streamsSaid {
						streamsSaid = true
						sec.note = streamsComment + sec.note
					}
					sec.streams[p][k] = h
				}
			}
		}
		buf = w.appendSecond(buf, sec)
		if len(buf) >= 1<<20 {
			if _, err = out.Write(buf); err != nil {
				break
			}
			buf = buf[:0]
		}
	}
	if err == nil {
		_, err = out.Write(buf)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
