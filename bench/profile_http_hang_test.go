package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// hangingControl is a profiler control whose /start_profile (hangStart)
// or /stop_profile (else) takes the call and answers nothing until the
// test ends; the other call answers at once. started is closed when the
// start arrives.
type hangingControl struct {
	srv     *httptest.Server
	started chan struct{}
	stops   atomic.Int32
}

func newHangingControl(t *testing.T, hangStart bool) *hangingControl {
	c := &hangingControl{started: make(chan struct{})}
	release := make(chan struct{})
	var once atomic.Bool
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hang := false
		switch r.URL.Path {
		case "/start_profile":
			if once.CompareAndSwap(false, true) {
				close(c.started)
			}
			hang = hangStart
		case "/stop_profile":
			c.stops.Add(1)
			hang = !hangStart
		}
		if hang {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { close(release); c.srv.Close() })
	return c
}

// hungControlRun runs a streamed load with a window (an hour, so that no
// start bound passes) through ctl, whose calls may take
// --profile-timeout of 10 minutes; it interrupts the run once the
// start has arrived, and calls then (nil for nothing) once the load has
// ended. The run must end long before those 10 minutes.
func hungControlRun(t *testing.T, ctl *hangingControl, grace time.Duration, then func(h *Hurry)) *report.Result {
	t.Helper()
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2}})
	cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: time.Hour, MaxInflight: 50, Grace: grace}, time.Hour)
	cfg.Profile.HTTP = ctl.srv.URL
	cfg.Profile.Delay = 0
	cfg.Profile.Options = profile.Options{Duration: time.Hour, Slack: 10 * time.Minute}
	hurry := NewHurry()
	ctx, cancel := context.WithCancel(WithHurry(context.Background(), hurry))
	defer cancel()
	type ran struct {
		res *report.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := Run(ctx, cfg)
		done <- ran{res, err}
	}()
	<-ctl.started
	cancel()
	if then != nil {
		for !hurry.Now() { // true once the load has ended
			time.Sleep(10 * time.Millisecond)
		}
		then(hurry)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.res.Profile == nil || r.res.Profile.HTTP == nil {
			t.Fatalf("no HTTP window in the result: %+v", r.res.Profile)
		}
		return r.res
	case <-time.After(time.Minute): // far below --profile-timeout's 10 minutes
		t.Fatal("the interrupted run still waits for the hung control call")
		return nil
	}
}

// Ctrl-C while /start_profile hangs: the run waits --grace for it, then
// gives it up, still sends the stop (the start may take effect later) and
// writes its results. It waited the whole --profile-timeout before.
func TestCtrlCBoundsTheWaitForAHungStartProfile(t *testing.T) {
	ctl := newHangingControl(t, true)
	res := hungControlRun(t, ctl, 300*time.Millisecond, nil)
	p := res.Profile
	if !p.HTTP.Started.IsZero() || !strings.Contains(p.Error, "stopped waiting") || !strings.Contains(p.Error, "no window was opened") {
		t.Errorf("profile report %+v (error %q)", p.HTTP, p.Error)
	}
	if ctl.stops.Load() != 1 {
		t.Errorf("%d stops sent after a start given up: want 1", ctl.stops.Load())
	}
}

// A second Ctrl-C ends the wait for a hung /start_profile at once, even
// with a --grace of 10 minutes, sends the stop and writes the results.
func TestSecondCtrlCEndsTheWaitForAHungStartProfile(t *testing.T) {
	ctl := newHangingControl(t, true)
	res := hungControlRun(t, ctl, 10*time.Minute, func(*Hurry) {})
	if !strings.Contains(res.Profile.Error, "stopped waiting") || ctl.stops.Load() != 1 {
		t.Errorf("profile error %q, %d stops", res.Profile.Error, ctl.stops.Load())
	}
}

// Ctrl-C while /stop_profile hangs, then a second Ctrl-C: the run stops
// waiting and writes its results; the stop is not reported as answered.
func TestCtrlCBoundsTheWaitForAHungStopProfile(t *testing.T) {
	for _, second := range []bool{false, true} {
		ctl := newHangingControl(t, false)
		grace := 300 * time.Millisecond
		var then func(*Hurry)
		if second {
			grace, then = 10*time.Minute, func(*Hurry) {}
		}
		res := hungControlRun(t, ctl, grace, then)
		hw := res.Profile.HTTP
		if hw.Started.IsZero() || !hw.Interrupted || !hw.Stopped.IsZero() || hw.Trace != "" || !strings.Contains(res.Profile.Error, "/stop_profile: no answer") {
			t.Errorf("second interrupt %v: window %+v, error %q", second, hw, res.Profile.Error)
		}
		var out strings.Builder
		report.WriteSummary(&out, res)
		if strings.Contains(out.String(), "answered in") {
			t.Errorf("second interrupt %v: the summary says a stop that never answered answered:\n%s", second, out.String())
		}
	}
}

// result.json has no zero timestamps for an HTTP window: a 409 start
// (another client's window) leaves out started and every stop field, as
// no stop was sent; a refused connection is not said to leave the
// server profiling, and owes no stop.
func TestHTTPWindowRecordsOnlyWhatHappened(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2}})
	var stops atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stop_profile" {
			stops.Add(1)
			return
		}
		http.Error(w, "busy", http.StatusConflict)
	}))
	defer busy.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // nothing listens there now
	for _, c := range []struct {
		name, url string
		absent    []string
		present   []string
		notSaid   string
	}{
		{"409", busy.URL, []string{`"started"`, `"stop_sent"`, `"stopped"`, `"stop_ms"`}, []string{`"start_ms"`}, ""},
		{"refused", closedURL, []string{`"started"`, `"stop_sent"`, `"stopped"`, `"stop_ms"`}, []string{`"start_ms"`}, "may still be profiling"},
	} {
		cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: 500 * time.Millisecond, MaxInflight: 50, Grace: 5 * time.Second}, 200*time.Millisecond)
		cfg.Profile.HTTP = c.url
		cfg.Profile.Delay = 0
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Profile == nil || res.Profile.HTTP == nil || res.Profile.Error == "" {
			t.Fatalf("%s: profile %+v", c.name, res.Profile)
		}
		raw, err := json.Marshal(res.Profile.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range c.absent {
			if strings.Contains(string(raw), k) {
				t.Errorf("%s: result.json's window has %s: %s", c.name, k, raw)
			}
		}
		for _, k := range c.present {
			if !strings.Contains(string(raw), k) {
				t.Errorf("%s: result.json's window lacks %s: %s", c.name, k, raw)
			}
		}
		if c.notSaid != "" && strings.Contains(res.Profile.Error, c.notSaid) {
			t.Errorf("%s: the error says %q: %s", c.name, c.notSaid, res.Profile.Error)
		}
	}
	if stops.Load() != 0 {
		t.Errorf("%d stops sent to another client's window", stops.Load())
	}
}

// A --duration shorter than the window's end is not silently stretched:
// the run warns that the steady phase lasts until the window closes.
func TestWarnsWhenTheWindowOutlastsTheDuration(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2, ProfileDir: t.TempDir()}})
	for _, c := range []struct {
		duration time.Duration
		warned   bool
	}{{200 * time.Millisecond, true}, {time.Second, false}} {
		cfg := httpWindowConfig(t, srv, load.Plan{Rate: 50, Duration: c.duration, MaxInflight: 50, Grace: 5 * time.Second}, 300*time.Millisecond)
		cfg.Profile.Delay = 100 * time.Millisecond
		var warnings strings.Builder
		cfg.Warnings = &warnings
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		said := strings.Contains(warnings.String(), "load.Plan.Duration "+c.duration.String()+" is shorter than the profile window, which closes 400ms into the steady phase")
		if said != c.warned {
			t.Errorf("--duration %v: warned %v, want %v: %q", c.duration, said, c.warned, warnings.String())
		}
	}
}
