package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
)

func TestProgressRateCountsOnlyThePhaseTheRunIsIn(t *testing.T) {
	var r progressRate
	if got := r.next(load.Progress{Phase: load.Warmup, WarmupRequests: 100}, 10*time.Second); !strings.Contains(got, " 10.0 req/s over the last 10s") {
		t.Fatalf("warm-up rate %q", got)
	}
	// 50 more warm-up requests finished in the next 10 s, and 200 steady
	// ones: the steady rate is 20/s, not 25/s.
	if got := r.next(load.Progress{Phase: load.Steady, WarmupRequests: 150, SteadyRequests: 200}, 20*time.Second); !strings.Contains(got, " 20.0 req/s over the last 10s") {
		t.Fatalf("steady rate %q", got)
	}
	// A steady phase that began 4 s into a 10 s interval: its 1200
	// requests are 200/s over its 6 s, not 120/s over the 10 (review:
	// "149.9 req/s" at --rate 200 after a one-second warm-up).
	var fresh progressRate
	if got := fresh.next(load.Progress{Phase: load.Steady, WarmupRequests: 400, SteadyRequests: 1200, SteadyFrom: 4 * time.Second}, 10*time.Second); !strings.Contains(got, " 200.0 req/s over the last 6s") {
		t.Fatalf("steady rate after a warm-up %q", got)
	}
}

// TestProgressInALogIsWholeLinesWithThePhasesApart runs with stderr a pipe
// (as in CI): whole lines, no terminal codes, periodic lines while the run
// goes and the final counts last, warm-up and steady counted apart.
func TestProgressInALogIsWholeLinesWithThePhasesApart(t *testing.T) {
	// 100 + 400 requests one at a time against a 2 ms server last at least
	// a second, ten periods of 100 ms.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 2 * time.Millisecond}})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		read <- string(b)
	}()
	started := time.Now()
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:     load.Plan{Concurrency: 1, WarmupRequests: 100, Requests: 400},
		Progress: w, ProgressEvery: 100 * time.Millisecond})
	took := time.Since(started)
	w.Close()
	text := <-read
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(text, "\r\033") || !strings.HasSuffix(text, "\n") {
		t.Fatalf("terminal codes or a partial line in a log: %q", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	// The ticker may fall behind on a busy machine, never ahead.
	if max := int(took/(100*time.Millisecond)) + 1; len(lines) < 2 || len(lines) > max {
		t.Fatalf("%d lines in %v (at most %d):\n%s", len(lines), took, max, text)
	}
	re := regexp.MustCompile(`^\[\s*\d+s\] (warm-up|steady ) +(\d+) requests`)
	var lastWarm, lastSteady int64
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil || !strings.Contains(l, " req/s over the last ") {
			t.Fatalf("line %q", l)
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "warm-up" {
			if lastSteady > 0 || n < lastWarm || n > res.Phases.Warmup.Requests {
				t.Fatalf("warm-up line %q after %d warm-up and %d steady", l, lastWarm, lastSteady)
			}
			lastWarm = n
			continue
		}
		if n < lastSteady || n > res.Requests {
			t.Fatalf("steady line %q after %d; the run had %d steady requests", l, lastSteady, res.Requests)
		}
		lastSteady = n
	}
	final := lines[len(lines)-1]
	if want := fmt.Sprintf("steady  %9d requests %6d errors", res.Requests, 0); res.Requests != 400 || !strings.Contains(final, want) {
		t.Fatalf("the last line %q does not hold the final counts (%q)", final, want)
	}
}

func TestProgressLineKeepsWarmupApartAndShowsTheWindow(t *testing.T) {
	plan := load.Plan{WarmupDuration: 10 * time.Second, Duration: 60 * time.Second}
	warm := progressLine(load.Progress{Phase: load.Warmup, WarmupRequests: 500, LastSecond: load.Second{Requests: 200}}, 3*time.Second, plan)
	if !strings.Contains(warm, "[   3s/70s] warm-up       500 requests") || strings.Contains(warm, "steady") {
		t.Fatalf("warm-up line %q", warm)
	}
	steady := progressLine(load.Progress{Phase: load.Steady, WarmupRequests: 2000, SteadyRequests: 1200, SteadyErrors: 3, SteadyP99Us: 12500, Window: true}, 16*time.Second, plan)
	if !strings.Contains(steady, "steady       1200 requests      3 errors  p99 12.50 ms") || !strings.Contains(steady, "[profile window open]") {
		t.Fatalf("steady line %q", steady)
	}
	byCount := progressLine(load.Progress{}, time.Second, load.Plan{WarmupRequests: 100, Duration: time.Minute})
	if strings.Contains(byCount, "s/") {
		t.Fatalf("a warm-up by count has no known total: %q", byCount)
	}
}
