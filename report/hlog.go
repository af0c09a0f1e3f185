package report

import (
	"fmt"
	"io"
	"iter"
	"strconv"
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

// HlogWriter streams an HdrHistogram interval log (the format of
// HdrHistogram's HistogramLogWriter, which its log tools read): one
// histogram per second of the run, values in microseconds, start times in
// milliseconds. Every second is written (and reaches the file) as soon as
// it ends, so the log can be followed while the run goes on.
//
// The recorder calls Add and Interval with its lock held, so they only
// record and hand the finished second to a goroutine that encodes and
// writes it: a slow disk never holds up the load.
type HlogWriter struct {
	out         io.WriteCloser
	origin      time.Time
	warn        io.Writer                    // where a failed write is said at once; nil for nowhere
	windowState func() (bool, time.Duration) // the profile window's state and since when, for the comments that mark it; nil without one

	// Owned by the recorder's lock.
	warmup, steady *hdrhistogram.Histogram
	steadyBegun    bool // a steady request has finished, or there is no warm-up
	windowWas      bool

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

// Interval ends second and queues it for the file: a warm-up interval while
// the warm-up runs (also empty, so a stalled warm-up shows) and whenever
// warm-up requests still finish, a steady one every second from the first
// steady request on.
func (w *HlogWriter) Interval(second int) {
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
	if !w.steadyBegun || w.warmup.TotalCount() > 0 {
		s.warmup, w.warmup = w.warmup, w.take()
	}
	if w.steadyBegun {
		s.steady, w.steady = w.steady, w.take()
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
			for _, h := range []*hdrhistogram.Histogram{s.warmup, s.steady} {
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
// compressed histogram.
func (w *HlogWriter) appendSecond(buf []byte, s hlogSecond) []byte {
	buf = append(buf, s.note...)
	for _, iv := range []struct {
		tag string
		h   *hdrhistogram.Histogram
	}{{HlogWarmupTag, s.warmup}, {"", s.steady}} {
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
// written before them ("" for none, else whole lines).
type HlogInterval struct {
	Second         int
	Note           string
	Warmup, Steady *hdrhistogram.Histogram
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
	for s := range seconds {
		buf = w.appendSecond(buf, hlogSecond{second: s.Second, note: s.Note, warmup: s.Warmup, steady: s.Steady})
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
