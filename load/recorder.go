package load

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 us to 1 hour at 3 significant digits, in microseconds.
const (
	HistogramMinUs   = 1
	HistogramMaxUs   = 3_600_000_000
	HistogramDigits  = 3
	maxSeriesSeconds = 7 * 24 * 3600 // a week of per-second points; later seconds fold into the last
)

// NewHistogram returns an empty latency histogram with loadprof's range.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistogramMinUs, HistogramMaxUs, HistogramDigits)
}

// ValueAtPercentile returns the value at percentile p (0-100) the way
// HdrHistogram's Java and JavaScript implementations do: the smallest
// recorded value with at least ceil(p% of the count) values at or below it.
// (hdrhistogram-go rounds the rank to nearest instead, which can report a
// lower tail than other tools read from the same histogram.)
func ValueAtPercentile(h *hdrhistogram.Histogram, p float64) int64 {
	n := h.TotalCount()
	if n == 0 {
		return 0
	}
	p = math.Min(math.Max(math.Nextafter(p, math.Inf(-1)), 0), 100)
	rank := math.Max(math.Ceil(p/100*float64(n)), 1)
	// hdrhistogram-go takes the rank as int(q/100*n + 0.5): ask for the
	// quantile whose rounded rank is ours.
	return h.ValueAtQuantile(100 * rank / float64(n))
}

// Phase is the part of a run a request belongs to.
type Phase uint8

// Warm-up requests are kept apart from the steady state statistics.
const (
	Warmup Phase = iota
	Steady
)

func (p Phase) String() string {
	if p == Warmup {
		return "warmup"
	}
	return "steady"
}

// Sample is one finished request. Times are offsets from the run's start on
// its monotonic clock. Start is the intended send time in an open loop and
// the actual send time in a closed loop: latency is Done - Start.
type Sample struct {
	Phase    Phase
	InWindow bool
	Start    time.Duration // intended (open loop) or actual send time, latency counts from it
	Sent     time.Duration // when it actually left: Start plus the send lag
	Done     time.Duration
	Outcome  Outcome
}

// Second is one point of the per-second series, by completion time.
type Second struct {
	Second   int   `json:"t"` // seconds since the run started
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	P50Us    int64 `json:"p50_us"`
	P99Us    int64 `json:"p99_us"`
	MaxUs    int64 `json:"max_us"`

	// The load's shape, for the report's charts. Sent and Inflight are
	// known only once every request that started in the second has
	// finished, so the recorder fills them in when it takes a snapshot.
	P90Us int64 `json:"p90_us"`
	// Sent counts the requests whose start (the intended send time in an
	// open loop: the offered load) fell in this second.
	Sent int64 `json:"sent"`
	// Inflight is the mean number of requests outstanding over the second
	// (their summed time in flight within it, divided by the second's
	// length), counted from each request's start as its latency is.
	Inflight float64 `json:"inflight"`
	// Bytes written for the requests sent in this second and read for
	// those that finished in it (Outcome.BytesSent, BytesReceived).
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
}

// PhaseStats are the counts and histograms of one phase, or of the steady
// requests inside or outside the profile window.
type PhaseStats struct {
	Requests int64 // finished, successful or not
	Errors   map[ErrorKey]int64
	// Histogram holds the latency in us of every request that reached the
	// server (Outcome.Measured): failures at the time they failed, a
	// timeout at the timeout. OK holds the successful requests only.
	Histogram *hdrhistogram.Histogram
	OK        *hdrhistogram.Histogram
	FirstAt   time.Duration // earliest Start
	LastAt    time.Duration // latest Done
}

func newPhaseStats() *PhaseStats {
	return &PhaseStats{Errors: map[ErrorKey]int64{}, Histogram: NewHistogram(), OK: NewHistogram(), FirstAt: -1}
}

func (p *PhaseStats) add(s *Sample, latencyUs int64) {
	p.Requests++
	if s.Outcome.Class != OK {
		p.Errors[s.Outcome.Key()]++
	} else {
		_ = p.OK.RecordValue(latencyUs)
	}
	if s.Outcome.Measured() {
		_ = p.Histogram.RecordValue(latencyUs)
	}
	if p.FirstAt < 0 || s.Start < p.FirstAt {
		p.FirstAt = s.Start
	}
	if s.Done > p.LastAt {
		p.LastAt = s.Done
	}
}

// ErrorTotal is the number of failed requests.
func (p *PhaseStats) ErrorTotal() int64 {
	var n int64
	for _, c := range p.Errors {
		n += c
	}
	return n
}

func (p *PhaseStats) clone() *PhaseStats {
	c := *p
	c.Histogram = p.Histogram.Clone()
	c.OK = p.OK.Clone()
	c.Errors = make(map[ErrorKey]int64, len(p.Errors))
	for k, v := range p.Errors {
		c.Errors[k] = v
	}
	return &c
}

// Recorder collects samples from concurrent workers. Record does not
// allocate once every error class it sees has been seen before.
type Recorder struct {
	origin     time.Time // the run's clock: every offset is measured from here
	windowOpen atomic.Bool
	// windowChangedAt is when SetWindow last ran (run clock, ns); it is
	// stored before windowOpen, so a reader that sees the new state sees
	// its time.
	windowChangedAt atomic.Int64
	frozen          atomic.Bool

	mu          sync.Mutex
	warmup      *PhaseStats
	steady      *PhaseStats
	window      *PhaseStats
	outside     *PhaseStats
	firstErrors map[ErrorKey]string
	late        int64 // samples that arrived after Freeze

	windowEvents []Sample      // steady requests sent in the profile window or in flight when it opened, for the client trace
	windowFrom   time.Duration // when the window opened
	// windowTruncated: more requests than MaxWindowEvents were in it.
	windowTruncated bool

	// The current second's requests by phase: a second holds its steady
	// requests alone once it has any, so that the steady seconds add up
	// to the steady phase exactly (a warm-up request finishing after the
	// steady phase began is in the warm-up's figures only).
	interval, warmInterval *hdrhistogram.Histogram
	sink                   IntervalSink
	intervalReq            int64
	intervalErr            int64
	warmReq, warmErr       int64
	second                 int
	series                 []Second

	// By the second a request started in, not the one it finished in:
	// requests started and their summed seconds in flight.
	sentBySecond      []int64
	busyBySecond      []float64
	bytesSentBySecond []int64
	intervalBytesIn   int64
}

// NewRecorder returns an empty Recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{
		origin:      time.Now(),
		warmup:      newPhaseStats(),
		steady:      newPhaseStats(),
		window:      newPhaseStats(),
		outside:     newPhaseStats(),
		firstErrors: map[ErrorKey]string{},
		interval:    NewHistogram(),
		// only the warm-up's seconds use it
		warmInterval: NewHistogram(),
	}
}

// MaxWindowEvents bounds the requests kept one by one for the client trace
// of a profile window.
const MaxWindowEvents = 200_000

// SetWindow marks the profile window open or closed. Requests sent while it
// is open are counted in the window statistics and kept for the client
// trace, with those in flight when it opened.
func (r *Recorder) SetWindow(open bool) {
	if open {
		r.mu.Lock()
		if r.windowEvents == nil {
			r.windowEvents = make([]Sample, 0, 4096)
			r.windowFrom = r.Now()
		}
		r.mu.Unlock()
	}
	r.windowChangedAt.Store(int64(r.Now()))
	r.windowOpen.Store(open)
}

// WindowState is whether the profile window is open and when (run clock)
// it last opened or closed. It takes no lock: an interval sink, which
// runs with the recorder locked, may call it.
func (r *Recorder) WindowState() (open bool, since time.Duration) {
	open = r.windowOpen.Load()
	return open, time.Duration(r.windowChangedAt.Load())
}

// latencyOf is a sample's latency in us, within the histograms' range.
func latencyOf(s *Sample) int64 {
	return min(max(int64((s.Done-s.Start)/time.Microsecond), HistogramMinUs), HistogramMaxUs)
}

// NarrowWindow keeps in the window's statistics only the requests sent in
// [from, to] (run clock), the interval the server traced, once it is
// known: the Profile call that opened the window takes longer (the
// server starts after it arrives, and the answer carries the trace). The
// others count as outside. It reports false, changing nothing, when the
// window held more requests than were kept one by one.
func (r *Recorder) NarrowWindow(from, to time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.windowTruncated || r.windowEvents == nil {
		return false
	}
	window := newPhaseStats()
	for i := range r.windowEvents {
		s := &r.windowEvents[i]
		if !s.InWindow {
			continue // in flight when the window opened: outside already
		}
		if s.Sent >= from && s.Sent <= to {
			window.add(s, latencyOf(s))
		} else {
			r.outside.add(s, latencyOf(s))
		}
	}
	r.window = window
	return true
}

// WindowTruncated reports whether the window held more requests than
// WindowSamples keeps (MaxWindowEvents).
func (r *Recorder) WindowTruncated() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.windowTruncated
}

// WindowSamples returns the requests recorded in the profile window (at
// most MaxWindowEvents).
func (r *Recorder) WindowSamples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.windowEvents...)
}

// WindowOpen reports whether the profile window is open now.
func (r *Recorder) WindowOpen() bool { return r.windowOpen.Load() }

// Freeze stops recording: samples that finish later (requests still in
// flight when an interrupted run gave up waiting) are counted as late only.
func (r *Recorder) Freeze() { r.frozen.Store(true) }

// Record adds one finished request.
func (r *Recorder) Record(s Sample) {
	latencyUs := latencyOf(&s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen.Load() {
		r.late++
		return
	}
	if s.Outcome.Class != OK {
		if _, seen := r.firstErrors[s.Outcome.Key()]; !seen {
			msg := s.Outcome.Key().String()
			if s.Outcome.Err != nil {
				msg = s.Outcome.Err.Error()
			}
			r.firstErrors[s.Outcome.Key()] = msg
		}
	}
	if s.Phase == Warmup {
		r.warmup.add(&s, latencyUs)
	} else {
		r.steady.add(&s, latencyUs)
		if s.InWindow {
			r.window.add(&s, latencyUs)
		} else {
			r.outside.add(&s, latencyUs)
		}
		// The client trace also holds the requests in flight when the
		// window opened: the server may handle them inside its window, and
		// matching its request events needs them.
		inFlightAtOpen := r.windowEvents != nil && s.Sent < r.windowFrom && s.Done >= r.windowFrom
		if s.InWindow || inFlightAtOpen {
			if len(r.windowEvents) < MaxWindowEvents {
				r.windowEvents = append(r.windowEvents, s)
			} else {
				r.windowTruncated = true
			}
		}
	}
	r.addShape(s.Start, s.Done, s.Outcome.BytesSent)
	r.advanceTo(int(s.Done / time.Second))
	r.intervalBytesIn += s.Outcome.BytesReceived
	req, errs, h := &r.intervalReq, &r.intervalErr, r.interval
	if s.Phase == Warmup {
		req, errs, h = &r.warmReq, &r.warmErr, r.warmInterval
	}
	*req++
	if s.Outcome.Class != OK {
		*errs++
	}
	if s.Outcome.Measured() {
		_ = h.RecordValue(latencyUs)
		if r.sink != nil {
			r.sink.Add(s.Phase, latencyUs)
		}
	}
}

// addShape counts a request in the second it started and spreads its time
// in flight over the seconds it spans.
func (r *Recorder) addShape(start, done time.Duration, bytesSent int64) {
	if start < 0 {
		start = 0
	}
	if done < start {
		done = start
	}
	first, last := min(int(start/time.Second), maxSeriesSeconds-1), min(int(done/time.Second), maxSeriesSeconds-1)
	for len(r.sentBySecond) <= last {
		r.sentBySecond = append(r.sentBySecond, 0)
		r.busyBySecond = append(r.busyBySecond, 0)
		r.bytesSentBySecond = append(r.bytesSentBySecond, 0)
	}
	r.sentBySecond[first]++
	r.bytesSentBySecond[first] += bytesSent
	for sec := first; sec <= last; sec++ {
		from, to := max(start, time.Duration(sec)*time.Second), min(done, time.Duration(sec+1)*time.Second)
		if sec == maxSeriesSeconds-1 {
			to = done // the last point holds every later second
		}
		r.busyBySecond[sec] += (to - from).Seconds()
	}
}

// advanceTo closes the per-second points before second sec. Seconds with no
// completions get a zero point, so a stalled server shows as a gap.
func (r *Recorder) advanceTo(sec int) {
	for r.second < sec {
		r.flushSecond()
		r.second++
	}
}

func (r *Recorder) flushSecond() {
	req, errs, h := r.intervalReq, r.intervalErr, r.interval
	if req == 0 {
		req, errs, h = r.warmReq, r.warmErr, r.warmInterval // a warm-up second
	}
	p := Second{Second: r.second, Requests: req, Errors: errs, BytesReceived: r.intervalBytesIn}
	if r.sink != nil {
		r.sink.Interval(r.second)
	}
	if h.TotalCount() > 0 {
		p.P50Us = ValueAtPercentile(h, 50)
		p.P90Us = ValueAtPercentile(h, 90)
		p.P99Us = ValueAtPercentile(h, 99)
		p.MaxUs = h.Max()
	}
	r.interval.Reset()
	r.warmInterval.Reset()
	if len(r.series) >= maxSeriesSeconds {
		last := &r.series[len(r.series)-1]
		last.Requests += p.Requests
		last.Errors += p.Errors
		last.BytesReceived += p.BytesReceived
		if p.MaxUs > last.MaxUs {
			last.MaxUs = p.MaxUs
		}
	} else {
		r.series = append(r.series, p)
	}
	r.intervalReq, r.intervalErr, r.intervalBytesIn = 0, 0, 0
	r.warmReq, r.warmErr = 0, 0
}

// IntervalSink receives every measured latency of the run with its phase,
// and the end of every second (by completion time), e.g. to write an
// HdrHistogram interval log that keeps the warm-up apart. It is called with
// the recorder locked, so it must return quickly.
type IntervalSink interface {
	// Add is one measured request that finished in the current second.
	Add(phase Phase, latencyUs int64)
	// Interval closes second: every Add since the previous Interval was in it.
	Interval(second int)
}

// SetIntervalSink sets where per-second histograms go. Set it before the
// run starts.
func (r *Recorder) SetIntervalSink(s IntervalSink) {
	r.mu.Lock()
	r.sink = s
	r.mu.Unlock()
}

// Origin is the instant all offsets of this recorder are measured from.
func (r *Recorder) Origin() time.Time { return r.origin }

// Now is the offset of the present instant from Origin, on the monotonic
// clock.
func (r *Recorder) Now() time.Duration { return time.Since(r.origin) }

// Tick closes the per-second points up to now, so that seconds in which
// nothing finished (a stalled server) still appear in the series.
func (r *Recorder) Tick() {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.frozen.Load() {
		r.advanceTo(int(now / time.Second))
	}
}

// Snapshot is a copy of everything recorded so far.
type Snapshot struct {
	Warmup, Steady, Window, Outside *PhaseStats
	FirstErrors                     map[ErrorKey]string
	Series                          []Second
	Late                            int64
}

// Snapshot copies the recorded data. With final set, the current partial
// second is closed into the series first.
func (r *Recorder) Snapshot(final bool) Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if final && (r.intervalReq > 0) {
		r.flushSecond()
		r.second++
	}
	s := Snapshot{
		Warmup: r.warmup.clone(), Steady: r.steady.clone(),
		Window: r.window.clone(), Outside: r.outside.clone(),
		FirstErrors: make(map[ErrorKey]string, len(r.firstErrors)),
		Series:      append([]Second(nil), r.series...),
		Late:        r.late,
	}
	for i := range s.Series {
		if sec := s.Series[i].Second; sec < len(r.sentBySecond) {
			s.Series[i].Sent = r.sentBySecond[sec]
			s.Series[i].Inflight = r.busyBySecond[sec]
			s.Series[i].BytesSent = r.bytesSentBySecond[sec]
		}
	}
	for k, v := range r.firstErrors {
		s.FirstErrors[k] = v
	}
	return s
}

// Progress is what the live progress line shows.
type Progress struct {
	Phase          Phase // Steady once a steady request has finished
	WarmupRequests int64 // finished
	SteadyRequests int64 // finished
	SteadyErrors   int64
	LastSecond     Second // the last complete second, both phases
	SteadyP99Us    int64
	Window         bool // the profile window is open
	// SteadyFrom is when the first steady request started (run clock):
	// the steady phase's rate counts from there.
	SteadyFrom time.Duration
}

// Progress returns a cheap summary for the live progress line.
func (r *Recorder) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{
		WarmupRequests: r.warmup.Requests,
		SteadyRequests: r.steady.Requests,
		SteadyErrors:   r.steady.ErrorTotal(),
		Window:         r.windowOpen.Load(),
	}
	if r.steady.Requests > 0 {
		p.Phase = Steady
		p.SteadyP99Us = ValueAtPercentile(r.steady.Histogram, 99)
		p.SteadyFrom = r.steady.FirstAt
	}
	if n := len(r.series); n > 0 {
		p.LastSecond = r.series[n-1]
	}
	return p
}
