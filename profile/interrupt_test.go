package profile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
)

// A server that accepts Terminate but never returns the trace: once the
// capture is interrupted, it waits Grace for the trace, not the rest of
// the window plus the collection time (two hours here), and says it was
// interrupted.
func TestInterruptedCaptureWaitsGraceForATraceThatNeverComes(t *testing.T) {
	srv, conn := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Hang: true}})
	ctx, cancel := context.WithCancel(context.Background())
	type captured struct {
		res *profile.Result
		err error
	}
	done := make(chan captured, 1)
	go func() {
		res, err := profile.Capture(ctx, conn, srv.GRPCAddr(), profile.Options{Duration: time.Hour, Slack: time.Hour, Grace: 100 * time.Millisecond, LogDir: t.TempDir()})
		done <- captured{res, err}
	}()
	time.Sleep(100 * time.Millisecond) // the window is open (or about to be: the outcome is the same)
	cancel()
	select {
	case c := <-done:
		if c.err == nil || !strings.Contains(c.err.Error(), "interrupted") {
			t.Fatalf("got %v, want an interruption", c.err)
		}
		if !c.res.Terminated {
			t.Errorf("the server accepted Terminate, the result says it did not: %+v", c.res)
		}
	case <-time.After(time.Minute): // far below the window's two hours, far above the grace
		t.Fatal("the interrupted capture still waits for the trace after a minute")
	}
}
