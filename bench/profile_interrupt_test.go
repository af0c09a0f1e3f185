package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// Ctrl-C during a window whose server accepts Terminate but never returns
// the trace: the run waits --grace for it, not the window and
// --profile-timeout (two hours here), and the report says interrupted.
func TestCtrlCDuringAWindowThatNeverReturnsWaitsGrace(t *testing.T) {
	srv := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Hang: true}})
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan: load.Plan{Rate: 50, Duration: time.Hour, MaxInflight: 50, Grace: 200 * time.Millisecond},
		Profile: &ProfileConfig{Addr: srv.GRPCAddr(),
			Options: profile.Options{Duration: time.Hour, Slack: time.Hour, LogDir: t.TempDir()}}}
	type ran struct {
		res *report.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := Run(ctx, cfg)
		done <- ran{res, err}
	}()
	for srv.Predicts() < 20 { // the steady phase, and the window with it, has started
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if p := r.res.Profile; p == nil || !strings.Contains(p.Error, "interrupted") || strings.Contains(p.Error, "no answer") {
			t.Fatalf("profile report %+v, want an interruption", p)
		}
	case <-time.After(time.Minute): // far below the two hours, far above the grace
		t.Fatal("the interrupted run still waits for the trace after a minute")
	}
}
