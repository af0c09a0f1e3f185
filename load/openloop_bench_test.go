package load

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// processUsage is the user+system CPU time this process has used, and the
// context switches of its threads.
func processUsage(b *testing.B) (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Nvcsw + ru.Nivcsw)
}

// BenchmarkOpenLoopDispatch runs b.N requests as an open loop at 10,000
// requests/s and, beside it, as a closed loop on 16 connections, on each
// REST engine and on gRPC, against an in-process server. cpu-us/req is the
// process's CPU time per request (the server's share included, the same
// in both loops, so the difference is what the open loop's timing costs),
// csw/req its threads' context switches (wake-ups) per request;
// lag-p99-us is the open loop's send lag. ns/op means little here: the
// open loop takes 100 us a request by design.
func BenchmarkOpenLoopDispatch(b *testing.B) {
	type target struct {
		name string
		tr   func(b *testing.B) Transport
	}
	url := startEcho(b)
	targets := []target{}
	for _, engine := range []Engine{EngineGoroutines, EngineEpoll} {
		if engine == EngineEpoll && !eventLoopsAvailable {
			continue
		}
		targets = append(targets, target{"rest-" + string(engine), func(b *testing.B) Transport {
			r, err := NewREST(RESTConfig{URL: url, Engine: engine, Bodies: [][]byte{[]byte(`{"instances": [1]}`)}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(r.Close)
			return r
		}})
	}
	reply := validPredictResponse(b)
	grpcSrv := startGRPCTestServer(b, func(int64) ([]byte, error) { return reply, nil })
	targets = append(targets, target{"grpc", func(b *testing.B) Transport { return newTestGRPC(b, grpcSrv.addr, GRPCConfig{}) }})
	for _, tg := range targets {
		for _, loop := range []string{"open", "closed"} {
			b.Run(tg.name+"/"+loop, func(b *testing.B) {
				tr := tg.tr(b)
				plan := Plan{Concurrency: 16, Requests: int64(b.N)}
				if loop == "open" {
					plan = Plan{Rate: 10000, MaxInflight: 1000, Requests: int64(b.N)}
				}
				rec := NewRecorder()
				b.ReportAllocs()
				b.ResetTimer()
				cpu, switches := processUsage(b)
				timing, err := Run(context.Background(), plan, tr, counter(1), rec)
				cpuAfter, switchesAfter := processUsage(b)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if s := rec.Snapshot(false).Steady; len(s.Errors) != 0 {
					b.Fatalf("errors %v", s.Errors)
				}
				b.ReportMetric(float64((cpuAfter-cpu).Microseconds())/float64(b.N), "cpu-us/req")
				b.ReportMetric(float64(switchesAfter-switches)/float64(b.N), "csw/req")
				if loop == "open" {
					b.ReportMetric(float64(ValueAtPercentile(timing.SendLag, 99)), "lag-p99-us")
				}
			})
		}
	}
}

// BenchmarkOpenScheduleNext is the schedule's share of a request: its due
// time and phase, which every dispatcher asks without a lock.
func BenchmarkOpenScheduleNext(b *testing.B) {
	plan := Plan{Rate: 10000, WarmupRequests: 100, Duration: time.Hour, MaxInflight: 1000}
	s := newOpenSchedule(&plan, func() {})
	b.ReportAllocs()
	var at time.Duration
	for i := 0; i < b.N; i++ {
		seq := int64(i % 1000000)
		at += s.at(seq)
		if _, more := s.phase(seq); !more {
			b.Fatal("schedule over")
		}
	}
	_ = at
}
