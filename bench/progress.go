package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
)

// usPerMs converts the recorder's microseconds to milliseconds.
const usPerMs = 1000.0

// IsTerminal reports whether f is a terminal, where live progress belongs.
func IsTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// The periods of the progress lines: a terminal shows one line rewritten
// every second; a log (CI, a file, a pipe) gets a new line every 10 s, few
// enough to read, often enough to see that a long run is alive.
const (
	terminalProgressEvery = time.Second
	logProgressEvery      = 10 * time.Second
)

// startProgress reports the run's progress to w until the returned function
// is called, then prints the final counts once more. On a terminal the line
// is rewritten in place every second; anywhere else (w not a terminal) a
// whole line is added every 10 s. every, when positive, replaces the
// period. It only reads rec: load.Run closes the recorder's seconds.
func startProgress(w io.Writer, rec *load.Recorder, plan load.Plan, every time.Duration) func() {
	live := false
	if f, ok := w.(*os.File); ok {
		live = IsTerminal(f)
	}
	if every <= 0 {
		every = logProgressEvery
		if live {
			every = terminalProgressEvery
		}
	}
	tick := min(every, time.Second)
	ticksPerLine := max(1, int(every/tick))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		var rate progressRate
		show := func() {
			elapsed := rec.Now()
			p := rec.Progress()
			line := progressLine(p, elapsed, plan) + rate.next(p, elapsed)
			if live {
				fmt.Fprint(w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
		for ticks := 1; ; ticks++ {
			select {
			case <-stop:
				if w != nil {
					show()
					if live {
						fmt.Fprintln(w)
					}
				}
				return
			case <-t.C:
				if w != nil && ticks%ticksPerLine == 0 {
					show()
				}
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

// progressRate is the throughput between two progress lines, counted in the
// phase the run is in, so the warm-up's requests never raise the steady
// phase's rate (nor do warm-up requests that finish after it started).
type progressRate struct {
	at     time.Duration
	warmup int64
	steady int64
}

func (r *progressRate) next(p load.Progress, now time.Duration) string {
	dw, ds, dt := p.WarmupRequests-r.warmup, p.SteadyRequests-r.steady, now-r.at
	if p.Phase == load.Steady && p.SteadyFrom > r.at {
		// The steady phase began within this interval: its rate is over
		// its own part of it (review: 149.9 req/s at 200 when the interval
		// held a second of warm-up).
		dt = now - p.SteadyFrom
	}
	r.at, r.warmup, r.steady = now, p.WarmupRequests, p.SteadyRequests
	if dt <= 0 {
		return ""
	}
	n := dw
	if p.Phase == load.Steady {
		n = ds
	}
	return fmt.Sprintf("  %.1f req/s over the last %s", float64(n)/dt.Seconds(), dt.Round(100*time.Millisecond))
}

// progressLine is one progress line without its rate: elapsed time of the
// planned total, the phase with its own counts, and whether the profile
// window is open.
func progressLine(p load.Progress, elapsed time.Duration, plan load.Plan) string {
	clock := fmt.Sprintf("%4.0fs", elapsed.Seconds())
	if plan.Duration > 0 && (plan.WarmupRequests == 0 || plan.WarmupDuration > 0) {
		// The planned length is known when both phases are timed.
		clock += fmt.Sprintf("/%.0fs", (max(plan.WarmupDuration, 0) + plan.Duration).Seconds())
	}
	line := fmt.Sprintf("[%s] ", clock)
	if p.Phase == load.Warmup {
		line += fmt.Sprintf("warm-up %9d requests", p.WarmupRequests)
	} else {
		line += fmt.Sprintf("steady  %9d requests %6d errors  p99 %s ms", p.SteadyRequests, p.SteadyErrors, report.FormatMs(float64(p.SteadyP99Us)/usPerMs))
	}
	if p.Window {
		line += "  [profile window open]"
	}
	return line
}
