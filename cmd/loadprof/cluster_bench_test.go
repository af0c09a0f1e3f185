package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/sim"
)

// BenchmarkCoordinatorPerWorker measures what a coordinator process costs
// as its workers grow from 1 to 32: real worker processes on loopback at a
// low rate each (10 req/s, 10 s steady) against the simulator, the
// coordinator's CPU time (user + system) and peak resident memory from its
// rusage. Run it alone, once per size:
//
//	go test -run '^$' -bench CoordinatorPerWorker -benchtime 1x ./cmd/loadprof
func BenchmarkCoordinatorPerWorker(b *testing.B) {
	srv := testkit.Sim(b, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	data := testkit.File(b, "data.json", oneBody)
	for _, n := range []int{1, 2, 4, 8, 16, 32} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			var cpu time.Duration
			var rssKB int64
			for range b.N {
				addr := testkit.ClosedAddr(b)
				out := filepath.Join(b.TempDir(), "merged.json")
				coord := startProcB(b, "run", "--url", srv.PredictURL(), "--data", data, "--rate", fmt.Sprint(10*n), "--duration", "10s",
					"--workers", fmt.Sprint(n), "--listen", addr, "--out", out, "-q")
				var workers []*proc
				for range n {
					workers = append(workers, startProcB(b, "worker", "--join", addr, "-q"))
				}
				for _, w := range workers {
					<-w.done
				}
				<-coord.done
				if coord.code != 0 {
					b.Fatalf("coordinator exit %d: %s", coord.code, coord.stderr.String())
				}
				ru := coord.cmd.ProcessState.SysUsage().(*syscall.Rusage)
				cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				rssKB = max(rssKB, ru.Maxrss)
			}
			ms := float64(cpu) / float64(time.Millisecond) / float64(b.N)
			b.ReportMetric(ms, "cpu-ms/run")
			b.ReportMetric(ms/float64(n), "cpu-ms/worker")
			b.ReportMetric(float64(rssKB)/1024, "maxrss-MB")
		})
	}
}

// startProcB starts a loadprof process for a benchmark (startProc's
// testing.TB twin: the token in the environment).
func startProcB(b *testing.B, args ...string) *proc {
	b.Helper()
	return startProcTB(b, []string{clusterEnv}, args...)
}
