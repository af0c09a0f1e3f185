//go:build linux

package load

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// On this project's 2-core machines the epoll engine runs one loop; these
// runs make it use several, as it does on larger machines.
func TestEpollEngineSpreadsTheLoadOverSeveralLoops(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // up to 3 loops
	defer func(c int, r float64) { connectionsPerLoop, ratePerLoop = c, r }(connectionsPerLoop, ratePerLoop)
	connectionsPerLoop, ratePerLoop = 2, 1000

	t.Run("closed loop", func(t *testing.T) {
		srv := startRaw(t, okJSON(time.Millisecond))
		rec := NewRecorder()
		timing, err := Run(context.Background(), Plan{Concurrency: 6, Requests: 600}, engineREST(t, EngineEpoll, srv.url, 5*time.Second), counter(3), rec)
		if err != nil {
			t.Fatal(err)
		}
		if s := rec.Snapshot(true).Steady; s.Requests != 600 || len(s.Errors) != 0 || srv.requests.Load() != 600 {
			t.Fatalf("%d requests, errors %v, served %d", s.Requests, s.Errors, srv.requests.Load())
		}
		if timing.PeakInflight != 6 || srv.conns.Load() != 6 {
			t.Fatalf("peak in flight %d, connections %d; want 6 (3 loops of 2)", timing.PeakInflight, srv.conns.Load())
		}
	})
	t.Run("open loop", func(t *testing.T) {
		// 2000/s at 1000/s a loop: two loops, taking requests 0, 2, 4, ...
		// and 1, 3, 5, ...: the schedule and the counts are the same as one
		// loop's.
		openLoopOf350(t, EngineEpoll)
	})
}
