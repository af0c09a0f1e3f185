package load

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// openSchedule is an open loop's plan in request numbers: request seq is
// due at seq*interval, and which phase it belongs to (or whether the plan
// is over by then) follows from seq alone, so any number of dispatchers
// (the goroutine engine's one, the epoll engine's loops taking turns) can
// ask in any order without a lock. The only state is the end of sending
// when the schedule ran out while requests waited for a slot (over), and
// the count of steady requests that were never sent for that reason.
type openSchedule struct {
	plan          *Plan
	interval      float64       // ns between intended send times
	firstSteady   int64         // the first steady request number
	steadyStart   time.Duration // its intended time
	endSeq        int64         // the first request past the steady phase's schedule, unless held
	endAt         time.Duration // when that schedule ends; math.MaxInt64 without a Duration or Requests
	steadyStarted func()        // calls Plan.SteadyStarted once

	over    atomic.Bool
	notSent atomic.Int64
}

func newOpenSchedule(p *Plan, steadyStarted func()) *openSchedule {
	s := &openSchedule{plan: p, interval: float64(time.Second) / p.Rate, steadyStarted: steadyStarted}
	first := p.WarmupRequests
	if p.WarmupDuration > 0 {
		first = max(first, s.firstDueAtOrAfter(p.WarmupDuration))
	}
	s.firstSteady = first
	s.steadyStart = s.at(first)
	s.endSeq, s.endAt = int64(math.MaxInt64), time.Duration(math.MaxInt64)
	if p.Requests > 0 {
		s.endSeq = s.firstSteady + p.Requests
		s.endAt = s.at(s.endSeq)
	}
	if p.Duration > 0 {
		if byTime := s.steadyStart + p.Duration; byTime < s.endAt {
			s.endAt = byTime
			s.endSeq = min(s.endSeq, s.firstDueAtOrAfter(byTime))
		}
	}
	return s
}

// at is the offset at which request seq is due. Times beyond what a
// Duration holds (a rate of 1e-3/s far into a run) stay at the maximum
// instead of wrapping around to the past.
func (s *openSchedule) at(seq int64) time.Duration {
	at := float64(seq) * s.interval
	if at >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(at)
}

// firstDueAtOrAfter is the number of the first request whose intended
// time is t or later.
func (s *openSchedule) firstDueAtOrAfter(t time.Duration) int64 {
	if t <= 0 {
		return 0
	}
	est := float64(t) / s.interval
	if est >= math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	n := int64(est)
	for n > 0 && s.at(n-1) >= t {
		n--
	}
	for s.at(n) < t {
		n++
	}
	return n
}

// phase is the phase of request seq, or more=false when the plan is over
// by then. The answer depends on seq only (and on a profile window holding
// the steady phase open past its end), so the phases hold the same
// requests in whatever order dispatchers claim them.
func (s *openSchedule) phase(seq int64) (phase Phase, more bool) {
	if s.over.Load() {
		return Steady, false
	}
	if seq < s.firstSteady {
		return Warmup, true
	}
	s.steadyStarted()
	if seq >= s.endSeq && !s.plan.held() {
		return Steady, false
	}
	return Steady, true
}

// overWhileWaiting is asked when a request is overdue and no slot is free
// to send it (MaxInflight requests are outstanding). Once the steady
// phase's schedule has ended, waiting longer would stretch the run past
// its duration for as long as the server is slow: sending stops for every
// dispatcher (phase says so from then on), and each counts what it never
// sent with countNotSent. A plan with a request count and no duration
// asked for that many requests: it sends them all, however late.
func (s *openSchedule) overWhileWaiting(now time.Duration) bool {
	if s.over.Load() {
		return true
	}
	if s.plan.Duration == 0 || now < s.endAt || s.plan.held() {
		return false
	}
	s.over.Store(true)
	return true
}

// countNotSent counts the steady requests among seq, seq+stride,
// seq+2*stride, ... that will never be sent because sending stopped. Each
// dispatcher calls it once, for the requests it would have sent.
func (s *openSchedule) countNotSent(seq, stride int64) {
	if first := max(seq, s.firstSteady); first < s.endSeq {
		s.notSent.Add((s.endSeq - first + stride - 1) / stride)
	}
}

// slotWait is one open-loop dispatcher's account of waiting for a free
// slot: a request is saturated when it fell due before the dispatcher's
// last wait for a slot ended (it was late because MaxInflight requests
// were outstanding, also when a slot came free at once for it).
type slotWait struct {
	waiting bool          // a due request found every slot taken
	until   time.Duration // when the last such wait ended; -1 before any
}

func newSlotWait() slotWait { return slotWait{until: -1} }

// full notes that a due request found every slot taken.
func (w *slotWait) full() { w.waiting = true }

// resumed notes, at now, that a slot may be free again.
func (w *slotWait) resumed(now time.Duration) {
	if w.waiting {
		w.waiting, w.until = false, now
	}
}

// saturated reports whether the request due at intended is part of the
// backlog of a wait for a slot.
func (w *slotWait) saturated(intended time.Duration) bool {
	return w.waiting || intended <= w.until
}

// closedPhases is a closed loop's phase bookkeeping: requests are counted
// as they are sent, so the phase of the next one depends on the ones
// before it, under mu.
type closedPhases struct {
	mu          sync.Mutex
	warmupSent  int64
	steadySent  int64
	steadyStart time.Duration // -1 until the first steady request
}

// next decides the phase of a closed-loop request about to be sent now,
// or reports that the plan is complete. The time is read under the lock,
// so that requests claim their phases in the order of their send times.
func (c *closedPhases) next(p *Plan, now func() time.Duration, steadyStarted func()) (at time.Duration, phase Phase, more bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at = now()
	if (p.WarmupRequests > 0 && c.warmupSent < p.WarmupRequests) ||
		(p.WarmupDuration > 0 && at < p.WarmupDuration) {
		c.warmupSent++
		return at, Warmup, true
	}
	if c.steadyStart < 0 {
		c.steadyStart = at
		steadyStarted()
	}
	countDone := p.Requests > 0 && c.steadySent >= p.Requests
	timeDone := p.Duration > 0 && at-c.steadyStart >= p.Duration
	if (countDone || timeDone) && !p.held() {
		return at, Steady, false
	}
	c.steadySent++
	return at, Steady, true
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

// grace is how long an interrupted run waits for requests in flight.
func (p *Plan) grace() time.Duration {
	if p.Grace <= 0 {
		return defaultGrace
	}
	return p.Grace
}

// defaultGrace is Plan.Grace when it is not set.
const defaultGrace = 2 * time.Second

// DefaultSendSlack is Plan.SendSlack when it is not set: at 10,000
// requests/s on an idle machine it keeps the send lag's p99 under 100 us.
const DefaultSendSlack = 40 * time.Microsecond

// maxSendSlack bounds Plan.SendSlack: a wait the loop makes without the
// scheduler's knowledge (at most rawWaitWithin asked for) lasts up to the
// slack longer, and a stop of the world waits for it.
const maxSendSlack = 10 * time.Millisecond

// sendSlack is the timer slack of the plan's event loops.
func (p *Plan) sendSlack() time.Duration {
	if p.SendSlack <= 0 {
		return DefaultSendSlack
	}
	return p.SendSlack
}
