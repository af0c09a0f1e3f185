package load

import (
	"context"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
)

func TestClosedLoopBacksOffFromATargetThatRefusesConnections(t *testing.T) {
	// Nothing listens: every request fails at once. Without a back-off a
	// closed loop turns that into tens of thousands of failures a second;
	// with it, each of the 4 workers waits 1, 2, 4, ... ms between tries,
	// so a second holds at most about 10 tries per worker (fewer on a slow
	// machine, never more).
	addr := testkit.ClosedAddr(t)
	transports := map[string]func(t *testing.T) Transport{}
	for _, engine := range engines(t) {
		transports["rest-"+string(engine)] = func(t *testing.T) Transport {
			return engineREST(t, engine, "http://"+addr+"/v1/models/m:predict", time.Second)
		}
	}
	transports["grpc"] = func(t *testing.T) Transport {
		conns, err := DialGRPC(addr, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { CloseConns(conns) })
		g, err := NewGRPC(GRPCConfig{Conns: conns, Requests: [][]byte{{}}, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			rec := NewRecorder()
			if _, err := Run(context.Background(), Plan{Concurrency: 4, Duration: time.Second}, tr(t), counter(1), rec); err != nil {
				t.Fatal(err)
			}
			snap := rec.Snapshot(true)
			failures := snap.Steady.ErrorTotal()
			if failures == 0 || failures > 4*12 || snap.Steady.Requests != failures {
				t.Fatalf("%d requests, %d failures %v: want a few per worker, all failed", snap.Steady.Requests, failures, snap.Steady.Errors)
			}
		})
	}
}
