package load

import (
	"math"
	"testing"
	"time"
)

func TestSeriesCountsSentAndInflightBySecondStarted(t *testing.T) {
	r := NewRecorder()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	// Four requests from 0.5 s to 1.5 s: each is half a second in flight
	// in second 0 and half in second 1.
	for i := 0; i < 4; i++ {
		r.Record(Sample{Phase: Steady, Start: ms(500), Done: ms(1500), Outcome: Outcome{Class: OK}})
	}
	// One from 1.2 s to 3.7 s, finishing last: it was sent in second 1.
	r.Record(Sample{Phase: Steady, Start: ms(1200), Done: ms(3700), Outcome: Outcome{Class: OK}})
	snap := r.Snapshot(true)
	want := []struct {
		sent     int64
		inflight float64
		done     int64
	}{{4, 2.0, 0}, {1, 2.0 + 0.8, 4}, {0, 1, 0}, {0, 0.7, 1}}
	if len(snap.Series) != len(want) {
		t.Fatalf("%d seconds, want %d: %+v", len(snap.Series), len(want), snap.Series)
	}
	for i, w := range want {
		s := snap.Series[i]
		if s.Sent != w.sent || math.Abs(s.Inflight-w.inflight) > 1e-9 || s.Requests != w.done {
			t.Errorf("second %d: sent %d, in flight %.3f, done %d; want %d, %.3f, %d", i, s.Sent, s.Inflight, s.Requests, w.sent, w.inflight, w.done)
		}
	}
	// Four 1 s requests finished in second 1: p90 is 1 s, to 3 significant digits.
	if d := snap.Series[1].P90Us - 1_000_000; d < 0 || d > 1000 {
		t.Errorf("second 1 p90 %d us, want about 1 s", snap.Series[1].P90Us)
	}
}
