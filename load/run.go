package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
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

	// Hold, when set, keeps the steady phase running past Duration until it
	// is closed (a profile window that has not returned yet).
	Hold <-chan struct{}

	// SteadyStarted, when set, is called once when the first steady request
	// is sent.
	SteadyStarted func()
}

// Check reports the first thing wrong with p, naming the flag that sets it.
func (p *Plan) Check() error {
	// A rate's interval must fit a time.Duration with room to spare (1e-12
	// overflowed it and sent requests back to back), and the scheduler
	// cannot time requests much closer than 100 ns apart.
	const minRate, maxRate = 1e-3, 1e7
	switch {
	case math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0):
		return fmt.Errorf("--rate %g: must be a finite number of requests per second", p.Rate)
	case p.Rate < 0:
		return fmt.Errorf("--rate %g: must be positive", p.Rate)
	case p.Rate > 0 && p.Rate < minRate:
		return fmt.Errorf("--rate %g: must be at least %g (one request every %.0f s)", p.Rate, minRate, 1/minRate)
	case p.Rate > maxRate:
		return fmt.Errorf("--rate %g: must be at most %g requests per second", p.Rate, maxRate)
	case p.Concurrency < 0:
		return fmt.Errorf("--concurrency %d: must be positive", p.Concurrency)
	case p.Rate > 0 && p.Concurrency > 0:
		return errors.New("--rate and --concurrency exclude each other: choose an open or a closed loop")
	case p.Rate == 0 && p.Concurrency == 0:
		return errors.New("give --rate (open loop) or --concurrency (closed loop)")
	case p.Duration < 0:
		return fmt.Errorf("--duration %v: must not be negative", p.Duration)
	case p.Requests < 0:
		return fmt.Errorf("--requests %d: must not be negative", p.Requests)
	case p.WarmupDuration < 0:
		return fmt.Errorf("--warmup %v: must not be negative", p.WarmupDuration)
	case p.WarmupRequests < 0:
		return fmt.Errorf("--warmup %d: must not be negative", p.WarmupRequests)
	case p.Duration == 0 && p.Requests == 0:
		return errors.New("give --duration or --requests")
	case p.Rate > 0 && p.MaxInflight <= 0:
		return fmt.Errorf("--max-inflight %d: must be at least 1", p.MaxInflight)
	case p.Grace < 0:
		return fmt.Errorf("--grace %v: must not be negative", p.Grace)
	}
	return nil
}

// Timing is how a run went, apart from the samples.
type Timing struct {
	Start        time.Time     // wall clock at the run's origin
	Dispatched   int64         // requests handed to a sender
	Unfinished   int64         // requests still in flight when the run stopped waiting
	Interrupted  bool          // ctx was cancelled before the plan finished
	MaxSendLag   time.Duration // open loop: worst delay between intended and actual send
	Saturated    int64         // open loop: requests that waited for a free slot under MaxInflight
	PeakInflight int64
	Elapsed      time.Duration
}

// Run sends load according to plan until it is done or ctx is cancelled,
// and records every finished request in rec. The run's clock is rec's:
// time zero is rec.Origin().
func Run(ctx context.Context, plan Plan, tr Transport, pick Picker, rec *Recorder) (Timing, error) {
	if err := plan.Check(); err != nil {
		return Timing{}, err
	}
	r := &runner{plan: plan, tr: tr, pick: pick, rec: rec, start: rec.Origin(), steadyStart: -1}
	if rest, ok := tr.(*REST); ok && rest.useEventLoops() {
		if err := r.runEventLoops(ctx, rest); err != nil {
			return Timing{}, err
		}
		r.timing.Saturated = r.saturated.Load()
		r.timing.MaxSendLag = time.Duration(r.maxLag.Load())
	} else if plan.Rate > 0 {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	r.timing.Interrupted = ctx.Err() != nil
	r.wait()
	r.timing.Start = r.start
	r.timing.Dispatched = r.dispatched.Load()
	r.timing.PeakInflight = r.peak.Load()
	r.timing.Elapsed = time.Since(r.start)
	return r.timing, nil
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
	timing     Timing

	// phase bookkeeping, under phaseMu
	phaseMu        sync.Mutex
	warmupSent     int64
	steadySent     int64
	steadyStart    time.Duration
	firstSteadySeq int64 // open loop: the first steady request number
	steadyNotify   sync.Once
}

// phaseOf decides the phase of a closed-loop request about to be sent at
// offset at, or reports that the plan is complete.
func (r *runner) phaseOf(at time.Duration) (Phase, bool) {
	p := &r.plan
	if (p.WarmupRequests > 0 && r.warmupSent < p.WarmupRequests) ||
		(p.WarmupDuration > 0 && at < p.WarmupDuration) {
		r.warmupSent++
		return Warmup, true
	}
	if r.steadyStart < 0 {
		r.steadyStart = at
		if p.SteadyStarted != nil {
			r.steadyNotify.Do(p.SteadyStarted)
		}
	}
	countDone := p.Requests > 0 && r.steadySent >= p.Requests
	timeDone := p.Duration > 0 && at-r.steadyStart >= p.Duration
	if (countDone || timeDone) && !p.held() {
		return Steady, false
	}
	r.steadySent++
	return Steady, true
}

// held reports whether Hold keeps the steady load on past the plan's end
// (the profile window is still open).
func (p *Plan) held() bool {
	if p.Hold == nil {
		return false
	}
	select {
	case <-p.Hold:
		return false
	default:
		return true
	}
}

// scheduleSteady fixes, for an open loop whose request n is due at
// n*interval, which request number starts the steady phase: the first past
// both the warm-up count and the warm-up duration.
func (r *runner) scheduleSteady(interval float64) {
	p := &r.plan
	first := p.WarmupRequests
	if p.WarmupDuration > 0 {
		n := int64(float64(p.WarmupDuration) / interval)
		for n > 0 && time.Duration(float64(n-1)*interval) >= p.WarmupDuration {
			n--
		}
		for time.Duration(float64(n)*interval) < p.WarmupDuration {
			n++
		}
		first = max(first, n)
	}
	r.firstSteadySeq = first
	r.steadyStart = time.Duration(float64(first) * interval)
}

// phaseOfScheduled decides the phase of open-loop request number seq,
// due at offset at, or reports that the plan is complete. The answer
// depends on seq and at only, so the phases hold the same requests in
// whatever order they are claimed (several event loops take turns and one
// may run ahead). scheduleSteady must have run.
func (r *runner) phaseOfScheduled(seq int64, at time.Duration) (Phase, bool) {
	p := &r.plan
	if seq < r.firstSteadySeq {
		return Warmup, true
	}
	if p.SteadyStarted != nil {
		r.steadyNotify.Do(p.SteadyStarted)
	}
	countDone := p.Requests > 0 && seq-r.firstSteadySeq >= p.Requests
	timeDone := p.Duration > 0 && at-r.steadyStart >= p.Duration
	if (countDone || timeDone) && !p.held() {
		return Steady, false
	}
	return Steady, true
}

func (r *runner) since() time.Duration { return r.rec.Now() }

// send sends the next payload with s and records it. startAt is the
// intended (open loop) or actual (closed loop) send time; the request is in
// the profile window if the window is open now.
func (r *runner) send(s Sender, phase Phase, startAt time.Duration) {
	inWindow := r.rec.WindowOpen()
	r.dispatched.Add(1)
	r.trackInflight()
	out := s.Send(r.pick.Next())
	r.inflight.Add(-1)
	r.rec.Record(Sample{Phase: phase, InWindow: inWindow, Start: startAt, Done: r.since(), Outcome: out})
	r.finished.Add(1)
}

func (r *runner) trackInflight() { raiseTo(&r.peak, r.inflight.Add(1)) }

// raiseTo sets a to v if v is larger, safely against concurrent callers.
func raiseTo(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// initialOpenLoopWorkers is how many senders an open loop starts with; it
// adds one whenever a request is due and every sender is busy.
const initialOpenLoopWorkers = 8

// openLoop sends request i at start + i/rate whatever happened to earlier
// requests. Each sender claims the next request number, sleeps until its
// intended time and sends it, so no goroutine hands requests to another.
// A request that is already due when claimed means every sender was busy:
// another sender is started, up to MaxInflight; beyond that the request
// waits for a free sender and its latency still counts from its intended
// time.
func (r *runner) openLoop(ctx context.Context) {
	interval := float64(time.Second) / r.plan.Rate
	r.scheduleSteady(interval)
	var next int64 // guarded by phaseMu
	var workers atomic.Int64
	var spawn func() bool
	worker := func() {
		defer r.wg.Done()
		s := r.tr.NewSender()
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for {
			r.phaseMu.Lock()
			intended := time.Duration(float64(next) * interval)
			phase, more := r.phaseOfScheduled(next, intended)
			next++
			r.phaseMu.Unlock()
			if !more {
				return
			}
			if wait := intended - r.since(); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			} else {
				if ctx.Err() != nil {
					return
				}
				if !spawn() {
					r.saturated.Add(1)
				}
			}
			raiseTo(&r.maxLag, int64(r.since()-intended))
			r.send(s, phase, intended)
		}
	}
	spawn = func() bool {
		if workers.Add(1) > int64(r.plan.MaxInflight) {
			workers.Add(-1)
			return false
		}
		r.wg.Add(1)
		go worker()
		return true
	}
	for i := 0; i < initialOpenLoopWorkers && spawn(); i++ {
	}
	r.waitForWorkersOr(ctx)
	r.timing.Saturated = r.saturated.Load()
	r.timing.MaxSendLag = time.Duration(r.maxLag.Load())
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
// next request as soon as its previous one finished. It returns when the
// plan is done or ctx is cancelled, whichever is first.
func (r *runner) closedLoop(ctx context.Context) {
	defer r.waitForWorkersOr(ctx)
	for w := 0; w < r.plan.Concurrency; w++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s := r.tr.NewSender()
			for ctx.Err() == nil {
				r.phaseMu.Lock()
				sent := r.since()
				phase, more := r.phaseOf(sent)
				r.phaseMu.Unlock()
				if !more {
					return
				}
				r.send(s, phase, sent)
			}
		}()
	}
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
	grace := r.plan.Grace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	select {
	case <-done:
	case <-time.After(grace):
		r.rec.Freeze()
		r.timing.Unfinished = r.dispatched.Load() - r.finished.Load()
	}
}

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
