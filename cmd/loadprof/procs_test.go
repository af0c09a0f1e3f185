package main

import (
	"runtime"
	"testing"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
)

// The command, not the load package, gives the epoll engine the P it
// wants beside its loop; a gRPC run keeps --cpus as given.
func TestSetProcsLeavesAPBesideTheEventLoop(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	cases := []struct {
		cfg  bench.Config
		want int
	}{
		{bench.Config{URL: "http://127.0.0.1:8501/v1/models/m:predict"}, 2},
		{bench.Config{URL: "http://127.0.0.1:8501/", RESTEngine: load.EngineGoroutines}, 1},
		{bench.Config{URL: "https://127.0.0.1:8501/"}, 1},
		{bench.Config{GRPC: bench.GRPCTarget{Addr: "127.0.0.1:8500"}}, 1},
	}
	for _, c := range cases {
		setProcs(1, c.cfg)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("--cpus 1 for %s%s: GOMAXPROCS %d, want %d", c.cfg.URL, c.cfg.GRPC.Addr, got, c.want)
		}
	}
}
