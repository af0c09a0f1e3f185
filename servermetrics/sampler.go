package servermetrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
)

// Marks a run sets on a Sampler; windows are cut at them.
const (
	MarkStart        = "start"
	MarkSteadyStart  = "steady_start"
	MarkSteadyEnd    = "steady_end"
	MarkProfileOpen  = "profile_open"
	MarkProfileClose = "profile_close"
	MarkEnd          = "end"
)

// Config is what a Sampler scrapes and how often.
type Config struct {
	URL      string
	Model    string        // keep only this model's series (Filter)
	Interval time.Duration // between scrapes; 1 s when 0
	Timeout  time.Duration // of one scrape; 2 s when 0
	Client   *http.Client  // a client of the Sampler's own when nil
	// Header is sent with every scrape (an endpoint behind a proxy's
	// authentication); a Host entry sets the request's Host.
	Header http.Header
}

// Check reports a setting out of range, named by its Go name
// ("servermetrics.Config.URL"), as the other library packages do: the
// command says it in terms of its flags.
func (c *Config) Check() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return setting.Errorf("servermetrics.Config.URL", "servermetrics.Config.URL %s: %w", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return setting.Invalid("servermetrics.Config.URL", c.URL, "must be an http:// or https:// URL")
	case c.Interval < 0:
		return setting.Invalid("servermetrics.Config.Interval", c.Interval.String(), "must not be negative")
	case c.Timeout < 0:
		return setting.Invalid("servermetrics.Config.Timeout", c.Timeout.String(), "must not be negative")
	}
	return nil
}

// Sample is one scrape: when it started, the marks it was taken for, and
// the warning that replaced it when it failed.
type Sample struct {
	At    time.Time     `json:"at"`
	Took  time.Duration `json:"-"`
	Marks []string      `json:"marks,omitempty"`
	// MarkTimes are when each of Marks was set.
	MarkTimes []time.Time `json:"-"`
	// MarkLagMs is how long after the earliest of its marks the scrape
	// started (it waits for a scrape under way): requests that ended in
	// between fall on the wrong side of the mark.
	MarkLagMs float64 `json:"mark_lag_ms,omitempty"`
	Warning   string  `json:"warning,omitempty"`
	// Abandoned: loadprof itself cancelled the scrape at the end of the
	// run (CloseWithin) before the scrape's own deadline; the endpoint
	// did not fail it. A scrape that had its whole time without an
	// answer failed, whoever cancelled it then.
	Abandoned bool `json:"abandoned,omitempty"`

	ok bool
	// snap is what the scrape read, in samples a test builds; a
	// Sampler's own samples do not keep it (see summary).
	snap *Snapshot
}

// OK tells whether the scrape succeeded.
func (s *Sample) OK() bool { return s.ok || s.snap != nil }

// markAt tells whether the sample was taken for mark, and when the mark
// was set (the scrape's start when not known).
func (s *Sample) markAt(mark string) (time.Time, bool) {
	for i, m := range s.Marks {
		if m == mark {
			if i < len(s.MarkTimes) {
				return s.MarkTimes[i], true
			}
			return s.At, true
		}
	}
	return time.Time{}, false
}

// Sampler scrapes one endpoint in its own goroutine: at once, then every
// Interval, at each Mark, and a last time at Close. Nothing it does
// blocks its caller for longer than taking a lock: Mark only notes the
// mark and wakes the goroutine, and Close waits at most about one scrape
// Timeout. It summarizes each scrape as it arrives and keeps only the
// last snapshot (Report).
type Sampler struct {
	// endBy is when Close stops waiting: the last scrape's own timeout
	// ends there, so that a scrape under way that used up most of the
	// wait does not get a whole timeout more.
	endBy  time.Time
	cfg    Config
	client *http.Client
	parser *pageParser // only the loop's goroutine uses it

	mu        sync.Mutex
	samples   []Sample
	pending   []string    // marks not scraped yet
	pendingAt []time.Time // when each was set
	closed    bool
	// abandoning: CloseWithin cancelled the scrapes; a scrape that fails
	// for it was abandoned, not failed.
	abandoning bool
	// sealed: Close returned without the goroutine's last sample; it
	// adds nothing more.
	sealed bool

	sumMu sync.Mutex // the summary is fed outside mu: it takes a while for a large page
	sum   *summary

	wake    chan struct{} // a mark is pending
	closing chan struct{} // Close was called: take the last scrape and stop
	done    chan struct{} // the goroutine has ended
	cancel  context.CancelFunc
}

// Start checks cfg and starts sampling; ctx ends the sampling early (the
// samples taken so far are kept).
func Start(ctx context.Context, cfg Config) (*Sampler, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	client := cfg.Client
	if client == nil {
		// Its own transport: the load's connection pools stay the load's.
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{
		cfg: cfg, client: client, parser: newPageParser(Filter{Model: cfg.Model}),
		pending: []string{MarkStart}, pendingAt: []time.Time{time.Now()},
		sum:  newSummary(cfg.URL, cfg.Model),
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
		cancel: cancel,
	}
	go s.loop(ctx)
	return s, nil
}

// Mark asks for a scrape now, labelled name (MarkSteadyStart, ...). It
// does not wait for it.
func (s *Sampler) Mark(name string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pending = append(s.pending, name)
	s.pendingAt = append(s.pendingAt, time.Now())
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // already woken; the goroutine takes every pending mark
	}
}

// Close takes the last scrape (MarkEnd), stops the goroutine and returns
// every sample. It returns within about two scrape timeouts (and a
// second) whatever the endpoint does.
func (s *Sampler) Close() []Sample {
	return s.CloseWithin(2*s.cfg.Timeout + 100*time.Millisecond)
}

// CloseWithin is Close with the wait for the last scrape bounded by
// limit (an interrupted run's user is waiting): past it the scrape under
// way is cancelled, and that abandoned scrape is no failure of the
// endpoint's. It returns within limit and a second.
func (s *Sampler) CloseWithin(limit time.Duration) []Sample {
	return s.CloseBy(limit, nil, 0, nil)
}

// CloseBy is CloseWithin with two more ends to the wait: once shorten is
// closed (the user interrupted the run while it waited) the wait is
// bounded by shortLimit from then, and once stop is closed (the user
// interrupted again) the scrape under way is abandoned at once, and so
// is the wait for the goroutine's end: the results already measured are
// written without waiting for an endpoint. Nil channels never close.
func (s *Sampler) CloseBy(limit time.Duration, shorten <-chan struct{}, shortLimit time.Duration, stop <-chan struct{}) []Sample {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	if !already {
		s.endBy = time.Now().Add(limit)
	}
	s.mu.Unlock()
	if !already {
		close(s.closing)
	}
	// The loop may be in an interval scrape, then takes the last one.
	// Past the limit, cancelling ends the scrape; past a second more (a
	// client that ignores its context), the goroutine is left to finish
	// on its own and its sample is lost.
	t := time.NewTimer(limit)
	defer t.Stop()
wait:
	for {
		select {
		case <-s.done:
			s.cancel()
			return s.Samples()
		case <-shorten:
			shorten = nil // once
			if shortLimit < limit {
				if !t.Stop() {
					break wait // it fired meanwhile
				}
				t.Reset(shortLimit)
			}
		case <-stop:
			break wait
		case <-t.C:
			break wait
		}
	}
	s.mu.Lock()
	s.abandoning = true
	s.mu.Unlock()
	s.cancel()
	t.Reset(time.Second)
	select {
	case <-s.done:
	case <-stop:
		s.abandonLast("was abandoned when the run was interrupted again")
	case <-t.C:
		s.abandonLast("did not end when cancelled; abandoned")
	}
	s.cancel()
	return s.Samples()
}

// abandonLast stands for the last scrape, which the loop's goroutine has
// not ended: what it may still add is dropped, so that the samples and
// the report Close returns stay the last ones.
func (s *Sampler) abandonLast(why string) {
	s.add(Sample{At: time.Now(), Marks: []string{MarkEnd}, Abandoned: true, Warning: fmt.Sprintf("%s: the last scrape %s", s.cfg.URL, why)}, nil)
	s.mu.Lock()
	s.sealed = true
	s.mu.Unlock()
}

// Report is the endpoint's figures from the samples so far (all of them
// after Close).
func (s *Sampler) Report() Report {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	return s.sum.report()
}

// Samples returns a copy of the samples taken so far, without what they
// read.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

func (s *Sampler) loop(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	s.scrape(ctx, nil) // MarkStart is pending
	for {
		select {
		case <-ctx.Done():
			s.stopped(ctx)
			return
		case <-s.closing:
			if ctx.Err() != nil { // both ready: select picks either
				s.stopped(ctx)
				return
			}
			s.scrape(ctx, []string{MarkEnd})
			return
		case <-s.wake:
			s.scrape(ctx, nil)
		case <-tick.C:
			s.scrape(ctx, nil)
		}
	}
}

func (s *Sampler) stopped(ctx context.Context) {
	if s.ourCancel() {
		return // CloseWithin stopped it: nothing failed
	}
	s.add(Sample{At: time.Now(), Warning: fmt.Sprintf("%s: sampling stopped: %v", s.cfg.URL, ctx.Err())}, nil)
}

// ourCancel reports whether the sampling was cancelled by CloseWithin.
func (s *Sampler) ourCancel() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandoning
}

// add summarizes a sample and keeps it without its snapshot.
func (s *Sampler) add(sm Sample, snap *Snapshot) {
	s.mu.Lock()
	sealed := s.sealed
	s.mu.Unlock()
	if sealed {
		return
	}
	s.sumMu.Lock()
	s.sum.add(sm, snap)
	s.sumMu.Unlock()
	sm.ok, sm.snap = snap != nil, nil
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
}

// scrape takes one sample for the pending marks and extra.
func (s *Sampler) scrape(ctx context.Context, extra []string) {
	now := time.Now()
	s.mu.Lock()
	marks, times := append(s.pending, extra...), s.pendingAt
	s.pending, s.pendingAt = nil, nil
	endBy := s.endBy
	s.mu.Unlock()
	for range extra {
		times = append(times, now)
	}
	deadline := now.Add(s.cfg.Timeout)
	if len(extra) > 0 && !endBy.IsZero() && endBy.Before(deadline) {
		deadline = endBy // the last scrape: Close waits no longer
	}
	sctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	at := time.Now()
	snap, err := scrape(sctx, s.client, s.cfg.URL, s.cfg.Header, s.parser.parse)
	sm := Sample{At: at, Took: time.Since(at), Marks: marks, MarkTimes: times}
	if len(marks) > len(extra) {
		sm.MarkLagMs = float64(at.Sub(times[0])) / 1e6
	}
	switch {
	case err == nil:
		snap.At, snap.Answered = at, at.Add(sm.Took)
	case sctx.Err() != nil && !time.Now().Before(deadline):
		// It had its whole time and did not answer: the endpoint failed
		// it, even when the end of the run's cancel reached the request
		// before its own deadline did (a busy machine runs them late,
		// in either order).
		sm.Warning = fmt.Sprintf("%s: no answer within %v", s.cfg.URL, min(s.cfg.Timeout, max(0, deadline.Sub(now).Round(time.Millisecond))))
	case ctx.Err() != nil && s.ourCancel():
		sm.Abandoned = true
		sm.Warning = fmt.Sprintf("%s: the scrape under way at the end of the run was abandoned (not waited for)", s.cfg.URL)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		sm.Warning = fmt.Sprintf("%s: no answer within %v", s.cfg.URL, min(s.cfg.Timeout, max(0, deadline.Sub(now).Round(time.Millisecond))))
	default:
		sm.Warning = fmt.Sprintf("%s: %v", s.cfg.URL, err)
	}
	s.add(sm, snap)
}
