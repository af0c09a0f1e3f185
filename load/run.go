package load

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/setting"
)

// Plan says how much load to send and when. Exactly one of Rate (open loop)
// and Concurrency (closed loop) is set; the steady phase ends after Duration
// or Requests, whichever comes first (at least one is set).
type Plan struct {
	Rate        float64 // requests per second, open loop
	Concurrency int     // requests in flight, closed loop

	WarmupDuration time.Duration
	WarmupRequests int64
	Duration       time.Duration
	Requests       int64

	// MaxInflight bounds the requests in flight in an open loop. When it is
	// reached, further requests wait for a free slot; their latency still
	// counts from their intended send time.
	MaxInflight int

	// Grace is how long an interrupted run waits for requests in flight.
	Grace time.Duration

	// SendSlack is how late the epoll engine's open loop may send a request
	// (the timer slack of its waits): a wait that would end at a request's
	// intended time may end up to SendSlack later, so that one wake-up sends
	// every request due by then. A larger slack buys fewer wake-ups (less
	// CPU per request) with more send lag; 0 means DefaultSendSlack. The
	// goroutine engine and gRPC time their sends with Go's timers instead.
	SendSlack time.Duration

	// Hold, when set, keeps the steady phase running past Duration until it
	// is closed (a profile window that has not returned yet).
	Hold <-chan struct{}

	// SteadyStarted, when set, is called once when the first steady request
	// is sent.
	SteadyStarted func()
}

// Check reports the first thing wrong with p, as a *SettingError naming
// the field ("load.Plan.Rate").
func (p *Plan) Check() error {
	// A rate's interval must fit a time.Duration with room to spare (1e-12
	// overflowed it and sent requests back to back), and the scheduler
	// cannot time requests much closer than 100 ns apart.
	const minRate, maxRate = 1e-3, 1e7
	g := func(v float64) string { return fmt.Sprintf("%g", v) }
	switch {
	case math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0):
		return setting.Invalid("load.Plan.Rate", g(p.Rate), "must be a finite number of requests per second")
	case p.Rate < 0:
		return setting.Invalid("load.Plan.Rate", g(p.Rate), "must be positive")
	case p.Rate > 0 && p.Rate < minRate:
		return setting.Invalid("load.Plan.Rate", g(p.Rate), fmt.Sprintf("must be at least %g (one request every %.0f s)", minRate, 1/minRate))
	case p.Rate > maxRate:
		return setting.Invalid("load.Plan.Rate", g(p.Rate), fmt.Sprintf("must be at most %g requests per second", maxRate))
	case p.Concurrency < 0:
		return setting.Invalid("load.Plan.Concurrency", fmt.Sprint(p.Concurrency), "must be positive")
	case p.Rate > 0 && p.Concurrency > 0:
		return setting.Errorf("load.Plan.Rate", "load.Plan.Rate and load.Plan.Concurrency exclude each other: choose an open or a closed loop")
	case p.Rate == 0 && p.Concurrency == 0:
		return setting.Errorf("load.Plan.Rate", "give load.Plan.Rate (open loop) or load.Plan.Concurrency (closed loop)")
	case p.Duration < 0:
		return setting.Invalid("load.Plan.Duration", p.Duration.String(), "must not be negative")
	case p.Requests < 0:
		return setting.Invalid("load.Plan.Requests", fmt.Sprint(p.Requests), "must not be negative")
	case p.WarmupDuration < 0:
		return setting.Invalid("load.Plan.WarmupDuration", p.WarmupDuration.String(), "must not be negative")
	case p.WarmupRequests < 0:
		return setting.Invalid("load.Plan.WarmupRequests", fmt.Sprint(p.WarmupRequests), "must not be negative")
	case p.Duration == 0 && p.Requests == 0:
		return setting.Errorf("load.Plan.Duration", "give load.Plan.Duration or load.Plan.Requests")
	case p.Rate > 0 && p.MaxInflight <= 0:
		return setting.Invalid("load.Plan.MaxInflight", fmt.Sprint(p.MaxInflight), "must be at least 1")
	case p.Grace < 0:
		return setting.Invalid("load.Plan.Grace", p.Grace.String(), "must not be negative")
	case p.SendSlack < 0:
		return setting.Invalid("load.Plan.SendSlack", p.SendSlack.String(), "must not be negative")
	case p.SendSlack > maxSendSlack:
		return setting.Invalid("load.Plan.SendSlack", p.SendSlack.String(), "must be at most "+maxSendSlack.String())
	}
	return nil
}

// Timing is how a run went, apart from the samples.
type Timing struct {
	Start        time.Time // wall clock at the run's origin
	Dispatched   int64     // requests handed to a sender
	Unfinished   int64     // requests still in flight when the run stopped waiting
	Interrupted  bool      // ctx was cancelled before the plan finished
	PeakInflight int64
	Elapsed      time.Duration

	// Open loop only. SendLag holds, for every request sent, how late it
	// went out against its intended time (us); MaxSendLag is its maximum.
	// A request is Saturated when it was late because MaxInflight requests
	// were outstanding: the server was slower than the rate allows, not the
	// client. MaxFreeSendLag is the worst lag of the other requests, which
	// only a busy client machine causes. NotSent counts the steady requests
	// that were still waiting for a free slot when the steady phase's
	// schedule ended: they were never sent.
	SendLag        *hdrhistogram.Histogram
	MaxSendLag     time.Duration
	MaxFreeSendLag time.Duration
	Saturated      int64
	NotSent        int64
}

// Run sends load according to plan until it is done or ctx is cancelled,
// and records every finished request in rec. The run's clock is rec's:
// time zero is rec.Origin(). Run closes rec's seconds as they pass, so the
// per-second series has every second of the run, also those in which
// nothing finished.
//
// A REST transport on the epoll engine runs max(GOMAXPROCS-1, 1) event
// loops, each locked to an OS thread, and wants one P (GOMAXPROCS slot)
// more than it has loops: with GOMAXPROCS 1 the loop shares its P with
// the rest of the process and pays for it (see EventLoopProcs). Run leaves
// GOMAXPROCS alone: setting it is the program's decision.
func Run(ctx context.Context, plan Plan, tr Transport, pick Picker, rec *Recorder) (Timing, error) {
	if err := plan.Check(); err != nil {
		return Timing{}, err
	}
	r := &runner{plan: plan, tr: tr, pick: pick, rec: rec, start: rec.Origin(), sendLag: newSendLag()}
	r.closed.steadyStart = -1
	if plan.Rate > 0 {
		r.open = newOpenSchedule(&r.plan, r.steadyStarted)
	}
	stopSeconds := r.closeSeconds()
	defer stopSeconds()
	if err := engineFor(tr).drive(ctx, r); err != nil {
		return Timing{}, err
	}
	r.timing.Interrupted = ctx.Err() != nil
	r.wait()
	r.timing.Start = r.start
	r.timing.Dispatched = r.dispatched.Load()
	r.timing.PeakInflight = r.peak.Load()
	r.timing.Elapsed = time.Since(r.start)
	if plan.Rate > 0 {
		r.lagMu.Lock()
		r.timing.SendLag = r.sendLag.Clone()
		r.lagMu.Unlock()
		r.timing.MaxSendLag = time.Duration(r.maxLag.Load())
		r.timing.MaxFreeSendLag = time.Duration(r.maxFreeLag.Load())
		r.timing.Saturated = r.saturated.Load()
		r.timing.NotSent = r.open.notSent.Load()
	}
	return r.timing, nil
}

// engine is what sends a run's requests: the scheduler (runner) decides
// which phase each request is in and keeps the run's counts; the engine
// decides how requests go out and calls begin and finish around each.
// drive returns when the plan is done or ctx is cancelled; the requests
// still in flight then are in r.wg.
type engine interface {
	drive(ctx context.Context, r *runner) error
}

// engineOwner is a Transport that may drive its own requests instead of
// handing them to Senders on goroutines (REST on the epoll engine);
// ownEngine returns nil when it does not.
type engineOwner interface {
	ownEngine() engine
}

// engineFor chooses the engine of a run over tr: the transport's own, or
// goroutines calling its Senders.
func engineFor(tr Transport) engine {
	if o, ok := tr.(engineOwner); ok {
		if e := o.ownEngine(); e != nil {
			return e
		}
	}
	return goroutineEngine{}
}

// goroutineEngine sends each request from a goroutine with a Sender of
// its own, blocking until the answer.
type goroutineEngine struct{}

func (goroutineEngine) drive(ctx context.Context, r *runner) error {
	if r.plan.Rate > 0 {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	return nil
}

type runner struct {
	plan  Plan
	tr    Transport
	pick  Picker
	rec   *Recorder
	start time.Time

	wg         sync.WaitGroup
	dispatched atomic.Int64
	finished   atomic.Int64
	inflight   atomic.Int64
	peak       atomic.Int64
	saturated  atomic.Int64
	maxLag     atomic.Int64 // ns
	maxFreeLag atomic.Int64 // ns, requests that were not saturated
	timing     Timing

	lagMu   sync.Mutex
	sendLag *hdrhistogram.Histogram // us; senders merge their own into it

	closed       closedPhases  // closed loop
	open         *openSchedule // open loop
	steadyNotify sync.Once
}

// steadyStarted calls Plan.SteadyStarted, once, when the first steady
// request is sent.
func (r *runner) steadyStarted() {
	if r.plan.SteadyStarted != nil {
		r.steadyNotify.Do(r.plan.SteadyStarted)
	}
}

// closedPhase decides the phase of a closed-loop request about to be sent
// at the time now returns, or reports that the plan is complete.
func (r *runner) closedPhase(now func() time.Duration) (at time.Duration, phase Phase, more bool) {
	return r.closed.next(&r.plan, now, r.steadyStarted)
}

// closeSeconds closes the recorder's seconds as they pass until the
// returned function is called.
func (r *runner) closeSeconds() (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.rec.Tick()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// The open loop's send lag (actual minus intended send time) is kept in a
// histogram from 1 us to an hour.
func newSendLag() *hdrhistogram.Histogram { return NewHistogram() }

// noteLag records how late a request went out. saturated says it waited
// for a free slot under MaxInflight.
func (r *runner) noteLag(h *hdrhistogram.Histogram, lag time.Duration, saturated bool) {
	lag = max(lag, 0)
	_ = h.RecordValue(max(int64(lag/time.Microsecond), HistogramMinUs))
	raiseTo(&r.maxLag, int64(lag))
	if saturated {
		r.saturated.Add(1)
	} else {
		raiseTo(&r.maxFreeLag, int64(lag))
	}
}

// mergeLag adds a sender's send lag histogram to the run's.
func (r *runner) mergeLag(h *hdrhistogram.Histogram) {
	r.lagMu.Lock()
	r.sendLag.Merge(h)
	r.lagMu.Unlock()
}

func (r *runner) since() time.Duration { return r.rec.Now() }

// begin counts a request going out and reports whether the profile
// window is open for it. Every engine calls it once per request, and
// finish once when the request ends.
func (r *runner) begin() (inWindow bool) {
	inWindow = r.rec.WindowOpen()
	r.dispatched.Add(1)
	raiseTo(&r.peak, r.inflight.Add(1))
	return inWindow
}

// finish records a request that begin counted.
func (r *runner) finish(s Sample) {
	r.inflight.Add(-1)
	r.rec.Record(s)
	r.finished.Add(1)
}

// send sends the next payload with s, records it and returns its outcome.
// startAt is the intended (open loop) or actual (closed loop) send time;
// the request is in the profile window if the window is open now.
func (r *runner) send(s Sender, phase Phase, startAt time.Duration) Outcome {
	inWindow := r.begin()
	if b, ok := s.(requestBeginner); ok {
		b.beginRequest(phase, inWindow, startAt, r.since)
	}
	sent := r.since()
	out := s.Send(r.pick.Next())
	r.finish(Sample{Phase: phase, InWindow: inWindow, Start: startAt, Sent: max(sent, startAt), Done: r.since(), Outcome: out})
	return out
}

// raiseTo sets a to v if v is larger, safely against concurrent callers.
func raiseTo(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// openLoop sends request i at start + i/rate whatever happened to earlier
// requests. One dispatcher keeps the schedule: at each intended time it
// hands the request to an idle sender, starting a new one (with its own
// connection) when none is idle, up to MaxInflight; so requests go out on
// time however long the server takes, and there are as many senders as
// requests were ever in flight at once. With MaxInflight senders all busy
// the request waits for the first to finish (its latency still counts
// from its intended time) and is saturated; if the steady phase's
// schedule ends while it waits, it and the rest are counted as not sent.
func (r *runner) openLoop(ctx context.Context) {
	sched := r.open
	limit := r.plan.MaxInflight
	idle := make(chan *openSender, limit)
	var senders []*openSender
	defer func() {
		for _, s := range senders {
			close(s.work)
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wait := newSlotWait()
	for seq := int64(0); ; seq++ {
		intended := sched.at(seq)
		phase, more := sched.phase(seq)
		if !more {
			// The steady phase lasts its --duration even when no request
			// is due in its last part (a rate below 1/duration).
			if d := sched.endAt - r.since(); r.plan.Duration > 0 && d > 0 && !sched.over.Load() {
				timer.Reset(d)
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
			return
		}
		if d := intended - r.since(); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		var s *openSender
		saturated := wait.saturated(intended)
		// The backlog of a wait for a slot: once the schedule is over it
		// is not sent, also when a sender has just come free.
		if saturated && sched.overWhileWaiting(r.since()) {
			sched.countNotSent(seq, 1)
			return
		}
		select {
		case s = <-idle:
		default:
			if len(senders) < limit {
				s = &openSender{work: make(chan openJob, 1)}
				senders = append(senders, s)
				r.wg.Add(1)
				go s.run(r, idle)
			} else {
				wait.full()
				if !r.awaitIdleSender(ctx, idle, &s, seq) {
					return
				}
				wait.resumed(r.since())
				saturated = true
			}
		}
		s.work <- openJob{phase: phase, intended: intended, saturated: saturated}
	}
}

// awaitIdleSender waits for a sender to finish while all MaxInflight are
// busy. It gives up, and says so, when ctx is cancelled or when the steady
// phase's schedule (its --duration, and any Hold past it) ends first; then
// request seq and the rest of the schedule are counted as not sent.
func (r *runner) awaitIdleSender(ctx context.Context, idle <-chan *openSender, s **openSender, seq int64) bool {
	sched := r.open
	hold := r.plan.Hold
	for {
		now := r.since()
		if sched.overWhileWaiting(now) {
			sched.countNotSent(seq, 1)
			return false
		}
		var end <-chan time.Time
		if r.plan.Duration > 0 && sched.endAt > now {
			t := time.NewTimer(sched.endAt - now)
			defer t.Stop()
			end = t.C
		}
		select {
		case *s = <-idle:
			return true
		case <-ctx.Done():
			return false
		case <-end: // the schedule ended: check again
		case <-hold: // the profile window closed: check again
			hold = nil
		}
	}
}

// openSender is one sender of an open loop with its own Sender (and so
// its own connection); it sends the jobs the dispatcher gives it.
type openSender struct {
	work chan openJob
}

type openJob struct {
	phase     Phase
	intended  time.Duration
	saturated bool
}

func (s *openSender) run(r *runner, idle chan<- *openSender) {
	defer r.wg.Done()
	sender := r.tr.NewSender()
	lag := newSendLag()
	defer r.mergeLag(lag)
	for j := range s.work {
		r.noteLag(lag, r.since()-j.intended, j.saturated)
		r.send(sender, j.phase, j.intended)
		idle <- s // never blocks: room for every sender
	}
}

// waitForWorkersOr returns when every worker is done or ctx is cancelled.
func (r *runner) waitForWorkersOr(ctx context.Context) {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// closedLoop keeps Concurrency requests in flight: each worker sends the
// next request as soon as its previous one finished, or after a back-off
// while the target refuses or drops connections. It returns when the plan
// is done or ctx is cancelled, whichever is first.
func (r *runner) closedLoop(ctx context.Context) {
	defer r.waitForWorkersOr(ctx)
	for w := 0; w < r.plan.Concurrency; w++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s := r.tr.NewSender()
			var backoff failureBackoff
			var pause *time.Timer
			for ctx.Err() == nil {
				sent, phase, more := r.closedPhase(r.since)
				if !more {
					return
				}
				if d := backoff.after(r.send(s, phase, sent)); d > 0 {
					if pause == nil {
						pause = time.NewTimer(d)
						defer pause.Stop()
					} else {
						pause.Reset(d)
					}
					select {
					case <-ctx.Done():
						return
					case <-pause.C:
					}
				}
			}
		}()
	}
}

// failureBackoff spaces out one closed-loop sender's requests while the
// target refuses or drops its connections, instead of spinning through
// failures as fast as the client can make them: 1 ms after the first such
// failure, doubling up to a second, and none again after a response (of
// any status). Timeouts have waited already and get no back-off.
type failureBackoff struct{ failures uint }

const maxFailureBackoff = time.Second

func (b *failureBackoff) after(out Outcome) time.Duration {
	switch out.Class {
	case ConnRefused, ConnReset, ConnClosed, OtherFailure:
	default:
		b.failures = 0
		return 0
	}
	b.failures++
	return min(time.Millisecond<<min(b.failures-1, 10), maxFailureBackoff)
}

// wait waits for the workers. A run that finished its plan waits for every
// request (each is bounded by the transport's timeout); an interrupted one
// waits at most Grace and then freezes the recorder.
func (r *runner) wait() {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	if !r.timing.Interrupted {
		<-done
		return
	}
	select {
	case <-done:
	case <-time.After(r.plan.grace()):
		r.rec.Freeze()
		r.timing.Unfinished = r.dispatched.Load() - r.finished.Load()
	}
}

// maxEventLoops is how many event loops the epoll engine runs at most in
// a process with procs Ps (GOMAXPROCS): one fewer, and at least one. A
// loop blocked in epoll_wait keeps its P. When no P is left idle, sysmon
// takes it back after 20 us, at every wait, and the loop has to get one
// back when epoll_wait returns: that churn (sysmon waking 50,000 times a
// second, futex hand-offs) cost more than the loop itself. So one P is
// left beside the loops, which also serves the rest of the process (the
// profile window's gRPC client, progress, an in-process server).
func maxEventLoops(procs int) int { return max(procs-1, 1) }

// EventLoopProcs is the GOMAXPROCS a program that would run with procs
// should set for the epoll engine: at least 2, so that its one event loop
// does not share the only P (see Run). Run does not change GOMAXPROCS.
func EventLoopProcs(procs int) int { return max(procs, 2) }

// Sizes of one event loop's share of the work: a loop handles tens of
// thousands of requests a second on one core, and a loop with few
// connections wakes once per request instead of once per batch.
var (
	connectionsPerLoop = 32
	ratePerLoop        = 25000.0 // requests/s
)

// loopCount is how many event loops the epoll engine runs for plan, given
// at most maxLoops threads: enough for the connections (closed loop) or
// the rate (open loop), not one per core whatever the load.
func loopCount(plan Plan, maxLoops int) int {
	want := (plan.Concurrency + connectionsPerLoop - 1) / connectionsPerLoop
	if plan.Rate > 0 {
		want = int(math.Ceil(plan.Rate / ratePerLoop))
	}
	return max(min(want, maxLoops, plan.slots()), 1)
}

// slots is how many requests may be in flight: the concurrency of a closed
// loop, MaxInflight for an open loop.
func (p *Plan) slots() int {
	if p.Rate > 0 {
		return p.MaxInflight
	}
	return p.Concurrency
}
